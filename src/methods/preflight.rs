//! `preflight`: read the app and decide whether it can be migrated,
//! before a journal exists. Changes nothing: a refusal names the problem
//! and the fix. Every method starts with it.

use std::collections::BTreeSet;

use crate::decisions;
use crate::engine::Done;
use crate::error::{describe_api, Error};
use crate::heroku::types::{POOL_ATTACHMENT, POOL_NAMESPACE};
use crate::heroku::{ApiError, Client};
use crate::journal::{AddonRecord, Facts, PoolRecord, ProcessRecord, RunOptions};
use crate::methods::outputs::id;
use crate::methods::Def;
use crate::plans::essential_tier;
use crate::secrets::fingerprint;

/// The plan's first step: done when the journal is written (preflight runs
/// before it), so it never runs from a journal.
pub fn def<'a>() -> Def<'a> {
    Def::read(
        id::PREFLIGHT,
        "check the app, the source database and the plan",
        |_, _| Ok(Done::words("preflight passed")),
    )
}

/// Everything preflight reads, gathered before anything changes.
pub struct PreflightReading {
    pub facts: Facts,
    pub warnings: Vec<String>,
    /// Warnings that matter only to a method that copies with a Heroku
    /// transfer (a transfer's limits).
    pub transfer_warnings: Vec<String>,
    /// A check that refuses the run, found once the app was read (a pooler
    /// with an Essential target, data larger than the plan, one-off
    /// dynos): `plan` still shows every method before it says so.
    pub refusal: Option<Error>,
}

/// What the person allowed past preflight's refusals.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    /// `--force`: a target plan equal to the source's, or smaller than the
    /// data; with `restore_formation`, an app found down.
    pub force: bool,
    /// `--restore-formation`: the formation the app should run after the
    /// run, for an app found in maintenance with every dyno at zero.
    pub restore_formation: Option<Vec<ProcessRecord>>,
}

/// Preflight: read the app and decide whether it can be migrated. Changes
/// nothing. `force` allows a target plan equal to the source's, or smaller
/// than the data.
pub fn preflight(
    client: &Client,
    app: &str,
    options: &RunOptions,
    allow: &Allow,
) -> Result<PreflightReading, Error> {
    let mut reading = read(client, app, options, allow)?;
    match reading.refusal.take() {
        Some(e) => Err(e),
        None => Ok(reading),
    }
}

/// Read the app as [`preflight`] does; a refusal found once the app was
/// read is returned in the reading, not as an error.
pub fn read(
    client: &Client,
    app: &str,
    options: &RunOptions,
    allow: &Allow,
) -> Result<PreflightReading, Error> {
    let force = allow.force;
    tracing::info!(app, to = %options.to_plan, from = %options.from_attachment, "preflight");
    let api = |context: &str| {
        let context = context.to_string();
        move |source: ApiError| preflight_api_error(app, &context, source)
    };
    let app_info = client.app(app).map_err(api("reading the app"))?;
    let attachments = client
        .attachments(app)
        .map_err(api("listing the app's add-on attachments"))?;
    let from = &options.from_attachment;
    let source_att = attachments
        .iter()
        .find(|a| &a.name == from && a.namespace.is_none())
        .ok_or_else(|| Error::Preflight {
            problem: format!("{app} has no add-on attached as {from}."),
            fix: if from == "DATABASE" {
                format!(
                    "attach the database to move as DATABASE (`heroku addons:attach ADDON \
                     --as DATABASE --app {app}`), or name its attachment with --from"
                )
            } else {
                format!("check the name with `heroku addons --app {app}` and pass it to --from")
            },
        })?;
    let source_id = source_att.addon_id().unwrap_or_default().to_string();
    let addon = client
        .addon(if source_id.is_empty() {
            source_att.addon.name.as_deref().unwrap_or_default()
        } else {
            &source_id
        })
        .map_err(api("reading the source add-on"))?;
    if !addon.is_postgres() {
        return Err(Error::Preflight {
            problem: format!(
                "{from} on {app} is the add-on {} ({}), which is not Heroku Postgres.",
                addon.name,
                addon.plan_name().unwrap_or("unknown plan")
            ),
            fix: "pgmigrate moves heroku-postgresql add-ons only; pass --from with the \
                  attachment of a Heroku Postgres database"
                .into(),
        });
    }
    let db = client
        .database(&addon.id)
        .map_err(api("reading the source database"))?;
    if let Some(leader) = db.leader_name() {
        return Err(Error::Preflight {
            problem: format!(
                "{} ({from}) is a follower of {leader}: a read-only replica.",
                addon.name
            ),
            fix: format!(
                "migrate the leader instead, or unfollow first (`heroku pg:unfollow {} --app \
                 {app}`)",
                addon.name
            ),
        });
    }
    let mut warnings = Vec::new();
    let mut transfer_warnings = Vec::new();
    // A transfer copies what the default credential can read (`heroku
    // pg:copy` warns the same). Essential plans have no other credentials
    // and answer this with an error: that, or any failure, means no warning.
    match client.credentials(&addon.name) {
        Ok(creds) if creds.len() > 1 => {
            let others: Vec<&str> = creds
                .iter()
                .map(|c| c.name.as_str())
                .filter(|n| *n != "default")
                .collect();
            transfer_warnings.push(format!(
                "{} has credentials besides the default one ({}): a Heroku transfer copies only \
                 the data the default credential can read, and the new database will not have \
                 those credentials. Check that they own no data of their own, and create them \
                 again afterwards (`heroku pg:credentials:create`)",
                addon.name,
                others.join(", ")
            ));
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(
            error = %describe_api(&e),
            "could not list the source's credentials"
        ),
    }
    let source_plan = addon.plan_name().unwrap_or_default().to_string();
    if source_plan == options.to_plan && !force {
        return Err(Error::Preflight {
            problem: format!(
                "{} is already on {}; migrating to the same plan only copies the data.",
                addon.name, options.to_plan
            ),
            fix: "choose another plan with --to, or pass --force to copy to a new add-on of \
                  the same plan"
                .into(),
        });
    }
    let mut refusal = too_small(
        &addon.name,
        &source_plan,
        db.data_size(),
        &options.to_plan,
        force,
    );
    let losses = crate::plans::losses(&source_plan, &options.to_plan);
    if !losses.is_empty() {
        warnings.push(format!(
            "{} moves down from {source_plan} to the Essential tier, and gives up: {}",
            addon.name,
            losses.join("; ")
        ));
    }
    let plan_name = options
        .to_plan
        .split_once(':')
        .map(|(_, p)| p)
        .unwrap_or(&options.to_plan);
    match client.plan("heroku-postgresql", &options.to_plan) {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {
            // Heroku always knows the heroku-postgresql service, so a 404
            // for the service too means this API does not serve plan
            // lookups (a partial implementation of Heroku's API, not
            // Heroku): the plan is then checked when the add-on is created,
            // which changes nothing on the app if it is refused.
            match client.addon_service("heroku-postgresql") {
                Ok(_) => {
                    return Err(Error::Preflight {
                        problem: format!("Heroku has no Postgres plan named {plan_name}."),
                        fix: "list the plans with `heroku addons:plans heroku-postgresql` and \
                              pass one to --to"
                            .into(),
                    })
                }
                Err(s) if s.is_not_found() => warnings.push(format!(
                    "this API does not serve plan lookups, so {} is checked only when the \
                     target add-on is created",
                    options.to_plan
                )),
                Err(s) => return Err(preflight_api_error(app, "checking the target plan", s)),
            }
        }
        Err(e) => return Err(preflight_api_error(app, "checking the target plan", e)),
    }
    let formation = client
        .formation(app)
        .map_err(api("reading the formation"))?;
    let dynos = client.dynos(app).map_err(api("listing the dynos"))?;
    let config = client
        .config_vars(app)
        .map_err(api("reading the config vars"))?;
    let source_var = source_att.config_var();
    let source_url = config.get(&source_var).ok_or_else(|| Error::Preflight {
        problem: format!("{app} has no config var {source_var} for its {from} attachment."),
        fix: format!(
            "check the attachment with `heroku addons:info {} --app {app}`",
            addon.name
        ),
    })?;
    let owned: BTreeSet<String> = attachments.iter().map(|a| a.config_var()).collect();
    let rebind_vars = decisions::rebind_candidates(&config, source_url, &owned);
    let source_other_attachments = attachments
        .iter()
        .filter(|a| {
            a.addon_id() == Some(addon.id.as_str()) && a.namespace.is_none() && &a.name != from
        })
        .map(|a| a.name.clone())
        .collect();
    let pool = attachments
        .iter()
        .find(|a| {
            a.name == POOL_ATTACHMENT
                && a.namespace.as_deref() == Some(POOL_NAMESPACE)
                && a.addon_id() == Some(addon.id.as_str())
        })
        .map(|a| PoolRecord {
            attachment_id: a.id.clone(),
            name: a.name.clone(),
        });
    if let Some(pool) = &pool {
        if essential_tier(&options.to_plan) {
            refusal = refusal.or(Some(pooler_error(
                app,
                &addon.name,
                &source_plan,
                &pool.name,
                &options.to_plan,
            )));
        }
    }
    let others = crate::methods::steps::others::under_way(client, app, &addon.id)
        .map_err(api("listing the app's add-ons"))?;
    if let Some(t) = others.first() {
        refusal = refusal.or(Some(other_run_error(app, t)));
    }
    let one_offs = decisions::one_off_names(&dynos);
    if !one_offs.is_empty() {
        refusal = refusal.or(Some(one_off_error(app, &one_offs)));
    }
    // A data maintenance pending or under way decides whether
    // addons:upgrade can run. The Data API refuses maintenances of Essential
    // databases (heroku/cli src/commands/data/maintenances/run.ts), so they
    // are not asked; an API that does not serve maintenances leaves it
    // unknown.
    let source_maintenance = if essential_tier(&source_plan) {
        None
    } else {
        match client.maintenance(&addon.id) {
            Ok(m) => Some(if m.status.is_empty() {
                "none".to_string()
            } else {
                m.status
            }),
            Err(e) => {
                tracing::debug!(error = %describe_api(&e), "could not read the maintenance");
                None
            }
        }
    };
    let mut recorded: Vec<ProcessRecord> = formation
        .iter()
        .map(|f| ProcessRecord {
            process_type: f.process_type.clone(),
            quantity: f.quantity,
            size: f.size_name().map(str::to_string),
        })
        .collect();
    let mut maintenance_was_on = app_info.maintenance;
    let down = app_info.maintenance
        && formation.iter().any(|f| f.process_type != "release")
        && formation.iter().all(|f| f.quantity == 0);
    match (down, &allow.restore_formation) {
        (true, Some(wanted)) if force => match restore(&recorded, wanted) {
            Ok(r) => {
                warnings.push(format!(
                    "{app} was found in maintenance with every dyno at zero: as you said \
                     (--force --restore-formation), the run ends with {} and maintenance off",
                    r.iter()
                        .map(|p| format!("{}={}", p.process_type, p.quantity))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
                recorded = r;
                maintenance_was_on = false;
            }
            Err(e) => refusal = refusal.or(Some(e)),
        },
        (true, _) => refusal = refusal.or(Some(found_down_error(app))),
        (false, Some(_)) => {
            return Err(Error::Usage(format!(
                "--restore-formation is only for an app found in maintenance with every dyno \
                 at zero; {app} is not: pgmigrate restores the formation it finds"
            )))
        }
        (false, None) if formation.iter().all(|f| f.quantity == 0) => warnings.push(format!(
            "{app} has no dynos running; nothing will be scaled."
        )),
        (false, None) => {}
    }
    Ok(PreflightReading {
        facts: Facts {
            app_id: app_info.id,
            maintenance_was_on,
            formation: recorded,
            source: AddonRecord {
                id: addon.id.clone(),
                name: addon.name.clone(),
                plan: source_plan,
            },
            source_url_fingerprint: fingerprint(source_url),
            source_other_attachments,
            rebind_vars,
            pool,
            source_bytes: db.data_size(),
            fork_follow: db.fork_follow(),
            source_followers: follower_names(&db.followers(), &attachments, &config),
            source_maintenance,
        },
        warnings,
        transfer_warnings,
        refusal,
    })
}

/// The data would not fit the target plan's published storage: refused
/// unless `--force`.
fn too_small(
    source: &str,
    source_plan: &str,
    bytes: Option<u64>,
    to: &str,
    force: bool,
) -> Option<Error> {
    let (bytes, room) = (bytes?, crate::plans::storage_bytes(to)?);
    if bytes <= room || force {
        return None;
    }
    let here = source_plan.split_once(':').map_or(source_plan, |(_, p)| p);
    let mut fit = crate::plans::plans_that_fit(to, bytes, 4);
    fit.retain(|p| p != here);
    fit.truncate(3);
    let human = crate::methods::human_bytes;
    Some(Error::Preflight {
        problem: format!(
            "{source} holds {} of data, and {to} offers {} of storage (Heroku's published \
             limit): the data would not fit.",
            human(bytes),
            human(room)
        ),
        fix: format!(
            "choose a plan that holds it with --to ({}), or pass --force if you know better \
             (the figure is pg:info's Data Size)",
            if fit.is_empty() {
                "a plan of a larger tier".to_string()
            } else {
                format!("{}, or a larger tier", fit.join(", "))
            }
        ),
    })
}

/// The source's followers as `heroku pg:info` names them: Heroku lists
/// them by URL, which holds a password, so each becomes the add-on and
/// attachment whose config var holds that URL. A follower this app does not
/// attach is counted, never shown.
fn follower_names(
    followers: &[String],
    attachments: &[crate::heroku::types::Attachment],
    config: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    followers
        .iter()
        .map(|f| {
            if !f.contains("://") {
                return f.clone();
            }
            attachments
                .iter()
                .filter(|a| a.namespace.is_none() && a.name != "DATABASE")
                .find(|a| config.get(&a.config_var()) == Some(f))
                .map(|a| match a.addon.name.as_deref() {
                    Some(addon) => format!("{addon} ({})", a.name),
                    None => a.name.clone(),
                })
                .unwrap_or_else(|| "a follower not attached to this app".into())
        })
        .collect()
}

/// What preflight found, in one line.
pub fn summary(j: &crate::journal::Journal) -> String {
    let Some(f) = j.facts.as_ref() else {
        return "preflight passed".into();
    };
    format!(
        "{} ({}) → {}; formation {}; maintenance {}; {} var(s) to rebind{}",
        f.source.name,
        f.source.plan,
        j.options.to_plan,
        if f.formation.is_empty() {
            "empty".to_string()
        } else {
            f.formation
                .iter()
                .map(|p| format!("{}={}", p.process_type, p.quantity))
                .collect::<Vec<_>>()
                .join(" ")
        },
        crate::methods::on_off(f.maintenance_was_on),
        f.rebind_vars.len(),
        if f.pool.is_some() {
            "; connection pooler present"
        } else {
            ""
        }
    )
}

/// The app pools connections to the database through
/// `DATABASE_CONNECTION_POOL` and the target plan cannot pool: the pooler
/// could not follow the database, and the run would fail after DATABASE
/// had moved.
fn pooler_error(app: &str, source: &str, source_plan: &str, pool: &str, plan: &str) -> Error {
    // Never suggest the plan the database is already on.
    let suggest = match crate::plans::level(source_plan) {
        Some(l) if !essential_tier(source_plan) => {
            let tier = crate::plans::tier(source_plan);
            format!(
                "heroku-postgresql:{tier}-{}",
                if l == 0 { 2 } else { l + 1 }
            )
        }
        _ => "heroku-postgresql:standard-0".to_string(),
    };
    Error::Preflight {
        problem: format!(
            "{app} reaches {source} through a connection pooler ({pool}), and {plan} is an \
             Essential-tier plan, which cannot pool connections (Heroku: \"You can't perform \
             this operation on Essential-tier databases.\"): the pooler could not follow the \
             database to it."
        ),
        fix: format!(
            "choose a Standard or higher plan with --to (e.g. --to {suggest}), or, if the app \
             can do without pooling, detach the pooler first (`heroku addons:detach {pool} \
             --app {app}`) and run again"
        ),
    }
}

/// The app is down (maintenance on, every dyno at zero) and nothing here
/// says why: taking that as its normal state would leave it down for good.
fn found_down_error(app: &str) -> Error {
    Error::Preflight {
        problem: format!(
            "{app} is in maintenance with every process type at zero, and no unfinished run of \
             it is journaled here: another migration (from another machine) may have it down \
             right now, or one was abandoned. Taking this as the app's normal state would \
             leave it down for good after the run."
        ),
        fix: format!(
            "ask whoever else migrates {app} (a `-pgmigrate-` add-on in `heroku addons --app \
             {app}` is a run under way). If none is, pass --force --restore-formation \
             web=N,worker=M (the formation the app should run afterwards): the run then ends \
             with it, and with maintenance off"
        ),
    }
}

/// The formation to restore, `--restore-formation` over the one found:
/// every type named must exist; sizes are kept unless given.
fn restore(found: &[ProcessRecord], wanted: &[ProcessRecord]) -> Result<Vec<ProcessRecord>, Error> {
    let mut out = found.to_vec();
    for w in wanted {
        let Some(p) = out.iter_mut().find(|p| p.process_type == w.process_type) else {
            return Err(Error::Usage(format!(
                "--restore-formation names {}, which is not a process type of the app (it has {})",
                w.process_type,
                found
                    .iter()
                    .map(|p| p.process_type.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        p.quantity = w.quantity;
        if w.size.is_some() {
            p.size = w.size.clone();
        }
    }
    Ok(out)
}

/// Another run's target is on the app: a migration under way, perhaps
/// from another machine (another `PGMIGRATE_HOME`).
fn other_run_error(app: &str, t: &crate::methods::steps::others::Target) -> Error {
    Error::Preflight {
        problem: format!(
            "another migration of {app} looks under way: the add-on {} (attached only as {}, \
             created {}) is the target of a pgmigrate run that has not finished, perhaps started \
             from another machine.",
            t.name,
            t.attachment,
            t.created_at.as_deref().unwrap_or("at an unknown time")
        ),
        fix: format!(
            "let that run finish (`pgmigrate status --app {app}` on the machine that started \
             it); if it was abandoned, roll it back from there, or, once you are sure no run \
             uses it, remove the add-on (`heroku addons:destroy {} --app {app}`) and run again",
            t.name
        ),
    }
}

fn one_off_error(app: &str, names: &[&str]) -> Error {
    Error::Preflight {
        problem: format!(
            "one-off dynos are running on {app}: {}. Scaling does not stop them, and they \
             could write to the old database while the app is down for the move.",
            names.join(", ")
        ),
        fix: format!(
            "let them finish or stop them (`heroku ps:stop {} --app {app}`), then run again",
            names[0]
        ),
    }
}

fn preflight_api_error(app: &str, context: &str, source: ApiError) -> Error {
    match (source.status(), source.error_id()) {
        (Some(404), _) if context == "reading the app" => Error::Preflight {
            problem: format!("Heroku has no app named {app} that this account can see."),
            fix: "check the name with `heroku apps`, and that HEROKU_API_KEY or ~/.netrc \
                  belongs to an account with access to it"
                .into(),
        },
        (Some(401), _) => Error::Preflight {
            problem: "Heroku refused the API token (401 unauthorized).".into(),
            fix: "log in again (`heroku login`) or set HEROKU_API_KEY to a valid token \
                  (`heroku authorizations:create`)"
                .into(),
        },
        (Some(403), _) => Error::Preflight {
            problem: format!(
                "this account may not change {app} (403 {}).",
                source.error_id().unwrap_or("forbidden")
            ),
            fix: format!(
                "ask an owner of {app} for the operate/deploy/manage permissions, or use their \
                 token"
            ),
        },
        _ => Error::Api {
            context: format!("preflight failed while {context}"),
            source: Box::new(source),
        },
    }
}
