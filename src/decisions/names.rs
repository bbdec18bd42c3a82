//! Whether a plan or app name is valid, and the plan's full name.

/// Validate and normalise a plan name: `essential-0` becomes
/// `heroku-postgresql:essential-0`; another service is refused.
pub fn normalise_plan(plan: &str) -> Result<String, String> {
    let plan = plan.trim();
    let (service, name) = match plan.split_once(':') {
        Some((s, n)) => (s, n),
        None => ("heroku-postgresql", plan),
    };
    if service != "heroku-postgresql" {
        return Err(format!(
            "`{plan}` is not a Heroku Postgres plan: pgmigrate moves databases between \
             heroku-postgresql plans; pass --to heroku-postgresql:PLAN (for example \
             heroku-postgresql:standard-0)"
        ));
    }
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!(
            "`{plan}` is not a valid plan name: plan names look like \
             heroku-postgresql:standard-0; see `heroku addons:plans heroku-postgresql`"
        ));
    }
    Ok(format!("heroku-postgresql:{name}"))
}

/// Whether `name` is a valid Heroku app name.
pub fn valid_app_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=30).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}
