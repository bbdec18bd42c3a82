//! Apps, their formation and dynos: the app, formation and dyno endpoints,
//! and scaling.

use super::*;

impl World {
    /// Set a process type's quantity; starts or stops dynos.
    pub(super) fn scale(
        &mut self,
        app: &str,
        ptype: &str,
        quantity: u32,
        now: u64,
        already_up: bool,
    ) {
        // FACT (Dev Center, Release Phase): dynos boot on a new release
        // only once its release phase succeeded: a dyno started now runs
        // the config of the newest succeeded release.
        let db = self.running_database(app);
        let stop_ms = self.timing.dyno_stop_ms;
        let ids: Vec<String> = (0..quantity).map(|_| self.uuid()).collect();
        let Some(a) = self.apps.get_mut(app) else {
            return;
        };
        let Some(p) = a.formation.iter_mut().find(|p| p.process_type == ptype) else {
            return;
        };
        p.quantity = quantity;
        let size = p.size.clone();
        let mut alive: Vec<&mut Dyno> = a
            .dynos
            .iter_mut()
            .filter(|d| d.process_type == ptype && d.stop_ms.is_none())
            .collect();
        let count = alive.len() as u32;
        if quantity < count {
            alive.sort_by_key(|d| std::cmp::Reverse(d.name.clone()));
            for d in alive.into_iter().take((count - quantity) as usize) {
                d.stop_ms = Some(now + stop_ms);
            }
        } else {
            let mut used: BTreeSet<String> = a.dynos.iter().map(|d| d.name.clone()).collect();
            let mut n = 1;
            for id in ids.into_iter().take((quantity - count) as usize) {
                while used.contains(&format!("{ptype}.{n}")) {
                    n += 1;
                }
                let name = format!("{ptype}.{n}");
                used.insert(name.clone());
                a.dynos.push(Dyno {
                    id,
                    name,
                    process_type: ptype.to_string(),
                    size: size.clone(),
                    started_ms: if already_up { 0 } else { now },
                    stop_ms: None,
                    settled_ms: now,
                    db_addon: db.clone(),
                    started_db: db.clone(),
                });
            }
        }
    }

    pub(super) fn get_app(&self, app: &str) -> Answer {
        match self.apps.get(app) {
            Some(a) => Answer::ok(self.app_json(a)),
            None => no_app(app),
        }
    }

    pub(super) fn app_json(&self, a: &App) -> Value {
        json!({"id": a.id, "name": a.name, "maintenance": a.maintenance,
               "region": {"name": "us"}, "stack": {"name": "heroku-24"},
               "web_url": format!("https://{}.herokuapp.com/", a.name)})
    }

    pub(super) fn patch_app(&mut self, app: &str, b: &Value) -> Answer {
        let Some(a) = self.apps.get_mut(app) else {
            return no_app(app);
        };
        if let Some(obj) = b.as_object() {
            if obj
                .keys()
                .any(|k| !["maintenance", "name", "build_stack"].contains(&k.as_str()))
            {
                return err(422, "invalid_params", "Unknown field in app update.");
            }
        }
        match b.get("maintenance") {
            Some(Value::Bool(m)) => a.maintenance = *m,
            Some(_) => return err(422, "invalid_params", "maintenance must be a boolean."),
            None => {}
        }
        let a = a.clone();
        Answer::ok(self.app_json(&a))
    }

    pub(super) fn formation_json(&self, app: &str) -> Vec<Value> {
        let Some(a) = self.apps.get(app) else {
            return vec![];
        };
        a.formation
            .iter()
            .map(|p| {
                json!({"id": p.id, "type": p.process_type, "quantity": p.quantity,
                       "size": p.size, "dyno_size": {"id": Value::Null, "name": p.size},
                       "command": format!("bin/{}", p.process_type),
                       "created_at": stamp(0), "updated_at": stamp(p.updated_ms),
                       "app": {"id": a.id, "name": a.name}})
            })
            .collect()
    }

    pub(super) fn patch_formation(&mut self, app: &str, b: &Value) -> Answer {
        if !self.apps.contains_key(app) {
            return no_app(app);
        }
        let Some(updates) = b.get("updates").and_then(Value::as_array) else {
            return err(422, "invalid_params", "updates is required.");
        };
        // Validate everything first: the batch applies whole or not at all.
        let mut plan = vec![];
        for u in updates {
            let Some(t) = u.get("type").and_then(Value::as_str) else {
                return err(422, "invalid_params", "Each update needs a type.");
            };
            let known = self.apps[app].formation.iter().any(|p| p.process_type == t);
            if !known {
                return err(
                    404,
                    "not_found",
                    format!("Couldn't find that process type ({t})."),
                );
            }
            let q = match u.get("quantity") {
                Some(v) => match v.as_u64() {
                    Some(q) => Some(q as u32),
                    None => return err(422, "invalid_params", "quantity must be an integer."),
                },
                None => None,
            };
            let size = match u.get("dyno_size").or(u.get("size")) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Object(o)) => o.get("name").and_then(Value::as_str).map(str::to_string),
                Some(_) => return err(422, "invalid_params", "dyno_size is invalid."),
                None => None,
            };
            plan.push((t.to_string(), q, size));
        }
        let now = self.now_ms();
        for (t, q, size) in plan {
            // FACT (Platform API schema, formation): `updated_at`, "when
            // dyno type was updated". GUESS: every update of the entry in a
            // batch counts, even one to the quantity it already has.
            if let Some(p) = self
                .apps
                .get_mut(app)
                .and_then(|a| a.formation.iter_mut().find(|p| p.process_type == t))
            {
                p.updated_ms = now;
            }
            if let Some(size) = size {
                if let Some(p) = self
                    .apps
                    .get_mut(app)
                    .and_then(|a| a.formation.iter_mut().find(|p| p.process_type == t))
                {
                    p.size = size;
                }
            }
            if let Some(q) = q {
                self.scale(app, &t, q, now, false);
            }
        }
        Answer::ok(json!(self.formation_json(app)))
    }

    pub(super) fn dynos_json(&self, app: &str) -> Vec<Value> {
        let Some(a) = self.apps.get(app) else {
            return vec![];
        };
        let now = self.now_ms();
        let mut list: Vec<Value> = a
            .dynos
            .iter()
            .map(|d| {
                let state = if d.started_ms > 0 && now < d.started_ms + self.timing.dyno_start_ms {
                    "starting"
                } else {
                    "up"
                };
                json!({"id": d.id, "name": d.name, "type": d.process_type, "state": state,
                       "size": d.size, "command": format!("bin/{}", d.process_type),
                       "app": {"id": a.id, "name": a.name}})
            })
            .collect();
        for (i, name) in a.one_offs.iter().enumerate() {
            list.push(
                json!({"id": format!("one-off-{i}"), "name": name, "type": "run",
                             "state": "up", "size": "standard-1X", "command": "bash",
                             "app": {"id": a.id, "name": a.name}}),
            );
        }
        list
    }
}
