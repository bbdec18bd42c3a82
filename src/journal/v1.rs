//! Journals of format version 1 (pgmigrate 0.1, whose only method was the
//! copy), read by upgrading them to version 2 as JSON before decoding: the
//! steps are named as before, so a step's `step` becomes its `id`; what v1
//! kept in `results` moves to the outputs of the steps that produced it;
//! the method is `copy`. Nothing in a v1 journal is lost or guessed: a
//! field the upgrade does not know stays where a v2 reader ignores it.
//!
//! The upgrade is pure and written once; the v1 layout is frozen here and
//! in `journal-format.md`.

use serde_json::{json, Map, Value};

/// The steps of every v1 journal, in order: the copy method of 0.1.
pub const V1_STEPS: [&str; 15] = [
    "preflight",
    "create-target",
    "wait-target",
    "alias-source",
    "maintenance-on",
    "scale-down",
    "wait-dynos",
    "start-copy",
    "wait-copy",
    "verify",
    "promote-target",
    "repoint-pool",
    "rebind-config",
    "scale-up",
    "maintenance-off",
];

/// Turn a v1 journal (as JSON) into a v2 one, or say what is wrong.
pub fn upgrade(mut v: Value) -> Result<Value, String> {
    let obj = v
        .as_object_mut()
        .ok_or_else(|| "it is not a JSON object".to_string())?;
    let results = match obj.remove("results") {
        Some(Value::Object(m)) => m,
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err("its `results` is not an object".into()),
    };
    let steps = obj
        .get_mut("steps")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| "it has no list of steps".to_string())?;
    let names: Vec<String> = steps
        .iter()
        .map(|s| {
            s.get("step")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect();
    if names != V1_STEPS {
        return Err("its step list is not the one pgmigrate 0.1 ran".into());
    }
    let outputs = outputs(&results, steps);
    let undo_outputs = undo_outputs(&results);
    for (record, name) in steps.iter_mut().zip(V1_STEPS) {
        let r = record
            .as_object_mut()
            .ok_or_else(|| format!("its record of step {name} is not an object"))?;
        r.remove("step");
        r.insert("id".into(), Value::String(name.into()));
        if let Some(out) = outputs.get(name) {
            r.insert("output".into(), out.clone());
        }
        if let Some(out) = undo_outputs.get(name) {
            r.insert("undo_output".into(), out.clone());
        }
    }
    obj.insert("method".into(), Value::String("copy".into()));
    obj.insert("format_version".into(), json!(2));
    Ok(v)
}

/// Where each v1 result goes: the output of the step that produced it.
fn outputs(results: &Map<String, Value>, steps: &[Value]) -> Map<String, Value> {
    let get = |k: &str| results.get(k).filter(|v| !v.is_null()).cloned();
    let state = |name: &str| {
        V1_STEPS
            .iter()
            .position(|s| *s == name)
            .and_then(|i| steps.get(i))
            .and_then(|r| r.get("state"))
            .and_then(Value::as_str)
            .unwrap_or("pending")
            .to_string()
    };
    let mut out = Map::new();
    if let Some(id) = get("target_addon_id") {
        out.insert("create-target".into(), json!({ "addon_id": id }));
    }
    if let Some(fp) = get("target_url_fingerprint") {
        out.insert("wait-target".into(), json!({ "url_fingerprint": fp }));
    }
    if let Some(alias) = get("alias") {
        out.insert("alias-source".into(), alias);
    }
    if let Some(Value::Object(w)) = get("window") {
        for (key, step) in [
            ("maintenance_on_at", "maintenance-on"),
            ("maintenance_off_at", "maintenance-off"),
        ] {
            if let Some(at) = w.get(key).filter(|v| !v.is_null()) {
                out.insert(step.into(), json!({ "at": at }));
            }
        }
    }
    if let Some(t) = get("transfer") {
        // v1 kept one record, updated by the wait: the start produced it,
        // and the wait's last look (success, or a failure) is the wait's.
        out.insert("start-copy".into(), t.clone());
        let finished = t.get("succeeded").is_some_and(|s| !s.is_null());
        if finished || state("wait-copy") == "done" {
            out.insert("wait-copy".into(), t);
        }
    }
    if let Some(r) = get("verify") {
        out.insert("verify".into(), r);
    }
    if let Some(Value::Object(r)) = get("releases") {
        if let Some(v) = r.get("before_cutover").filter(|v| !v.is_null()) {
            out.insert("wait-dynos".into(), json!({ "release_before_cutover": v }));
        }
        if let Some(v) = r.get("cutover").filter(|v| !v.is_null()) {
            out.insert("scale-up".into(), json!({ "release": v }));
        }
    }
    out
}

/// The undo outputs of a v1 journal: the release the rollback's restore of
/// the formation waited for belongs to `scale-down`'s undo.
fn undo_outputs(results: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(Value::Object(r)) = results.get("releases") {
        if let Some(v) = r.get("rollback").filter(|v| !v.is_null()) {
            out.insert("scale-down".into(), json!({ "release": v }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1() -> Value {
        let steps: Vec<Value> = V1_STEPS
            .iter()
            .map(|s| {
                json!({"step": s, "state": "done", "started_at": null, "finished_at": null,
                       "note": null, "undo": null, "undo_started_at": null,
                       "undo_finished_at": null})
            })
            .collect();
        json!({
            "format": "pgmigrate-journal", "format_version": 1, "steps": steps,
            "results": {
                "target_addon_id": "tid", "target_created": true, "target_destroyed": false,
                "alias": {"id": "aid", "name": "HEROKU_POSTGRESQL_RED"},
                "transfer": {"uuid": "u1", "num": 3, "succeeded": true, "processed_bytes": 10,
                             "source_bytes": 20, "finished_at": "t", "later_field": 1},
                "target_url_fingerprint": "sha256:ab",
                "window": {"maintenance_on_at": "t1", "maintenance_off_at": null},
                "verify": null,
                "releases": {"before_cutover": 4, "cutover": {"version": 6, "status": "succeeded",
                             "description": "Attach DATABASE"}, "rollback": null}
            }
        })
    }

    #[test]
    fn results_move_to_the_steps_that_produced_them() {
        let v2 = upgrade(v1()).unwrap();
        assert_eq!(v2["format_version"], 2);
        assert_eq!(v2["method"], "copy");
        assert!(v2.get("results").is_none());
        let steps = v2["steps"].as_array().unwrap();
        let out = |id: &str| {
            steps
                .iter()
                .find(|s| s["id"] == id)
                .unwrap()
                .get("output")
                .cloned()
        };
        assert_eq!(out("create-target").unwrap()["addon_id"], "tid");
        assert_eq!(out("wait-target").unwrap()["url_fingerprint"], "sha256:ab");
        assert_eq!(
            out("alias-source").unwrap()["name"],
            "HEROKU_POSTGRESQL_RED"
        );
        assert_eq!(out("maintenance-on").unwrap()["at"], "t1");
        assert!(out("maintenance-off").is_none());
        assert_eq!(out("start-copy").unwrap()["uuid"], "u1");
        assert_eq!(out("wait-copy").unwrap()["later_field"], 1);
        assert!(out("verify").is_none());
        assert_eq!(out("wait-dynos").unwrap()["release_before_cutover"], 4);
        assert_eq!(out("scale-up").unwrap()["release"]["version"], 6);
        assert!(steps[5].get("undo_output").is_none());
        assert!(steps.iter().all(|s| s.get("step").is_none()));
    }

    #[test]
    fn a_running_copy_stays_with_its_start() {
        let mut v = v1();
        v["steps"][8]["state"] = "running".into();
        v["results"]["transfer"]["succeeded"] = Value::Null;
        let v2 = upgrade(v).unwrap();
        assert!(v2["steps"][7].get("output").is_some());
        assert!(v2["steps"][8].get("output").is_none());
    }

    #[test]
    fn a_foreign_step_list_is_refused() {
        let mut v = v1();
        v["steps"].as_array_mut().unwrap().remove(2);
        assert!(upgrade(v).unwrap_err().contains("step list"));
        assert!(upgrade(json!([])).is_err());
        let mut v = v1();
        v["results"] = json!(3);
        assert!(upgrade(v).is_err());
    }
}
