//! Add-ons, attachments and config vars: provisioning, attaching and
//! destroying databases, and the config var endpoint.

use super::*;

impl World {
    pub(super) fn patch_config(&mut self, app: &str, b: &Value) -> Answer {
        if !self.apps.contains_key(app) {
            return no_app(app);
        }
        let Some(obj) = b.as_object() else {
            return err(422, "invalid_params", "Config vars must be an object.");
        };
        let owned: BTreeSet<String> = self
            .attachments
            .iter()
            .filter(|a| a.app == app)
            .map(|a| format!("{}_URL", a.name))
            .collect();
        let clash: Vec<&String> = obj.keys().filter(|k| owned.contains(*k)).collect();
        if !clash.is_empty() {
            return err(
                422,
                "invalid_params",
                format!(
                    "Cannot overwrite attachment values {}.",
                    clash
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        for (k, v) in obj {
            if !v.is_null() && !v.is_string() {
                return err(
                    422,
                    "invalid_params",
                    format!("{k} must be a string or null."),
                );
            }
        }
        if let Some(a) = self.apps.get_mut(app) {
            for (k, v) in obj {
                match v.as_str() {
                    Some(s) => {
                        a.config.insert(k.clone(), s.to_string());
                    }
                    None => {
                        a.config.remove(k);
                    }
                }
            }
        }
        // FACT (Dev Center, Releases): a config change is a release.
        // GUESS: its wording, one release per request.
        let set: Vec<&str> = obj
            .iter()
            .filter(|(_, v)| v.is_string())
            .map(|(k, _)| k.as_str())
            .collect();
        let removed: Vec<&str> = obj
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k.as_str())
            .collect();
        let description = match (set.is_empty(), removed.is_empty()) {
            (false, true) => format!("Set {} config vars", set.join(", ")),
            (true, false) => format!("Remove {} config vars", removed.join(", ")),
            _ => format!(
                "Set {} and remove {} config vars",
                set.join(", "),
                removed.join(", ")
            ),
        };
        if !obj.is_empty() {
            self.new_release(app, description);
        }
        Answer::ok(json!(self.config_of(app)))
    }

    pub(super) fn addon_json(&self, a: &Addon) -> Value {
        let now = self.now_ms();
        let vars: Vec<String> = self
            .attachments
            .iter()
            .filter(|t| t.addon_id == a.id)
            .map(|t| format!("{}_URL", t.name))
            .collect();
        let app_id = self.apps.get(&a.app).map(|x| x.id.clone());
        json!({"id": a.id, "name": a.name, "state": a.state(now),
               "plan": {"id": plan_id(&a.plan), "name": a.plan},
               "addon_service": {"id": plan_id(a.service()), "name": a.service()},
               "app": {"id": app_id, "name": a.app},
               "config_vars": vars,
               "created_at": stamp(a.created_ms), "updated_at": stamp(now),
               "provision_message": Value::Null, "web_url": Value::Null})
    }

    pub(super) fn attachment_json(&self, t: &Attachment) -> Value {
        let addon = self.addons.iter().find(|a| a.id == t.addon_id);
        let app_id = self.apps.get(&t.app).map(|x| x.id.clone());
        json!({"id": t.id, "name": t.name, "namespace": t.namespace,
               "addon": {"id": t.addon_id, "name": addon.map(|a| a.name.clone()),
                         "app": {"name": addon.map(|a| a.app.clone())}},
               "app": {"id": app_id, "name": t.app},
               "config_vars": [format!("{}_URL", t.name)]})
    }

    pub(super) fn pick_color_name(&self, app: &str) -> String {
        for c in COLORS {
            let name = format!("HEROKU_POSTGRESQL_{c}");
            if !self
                .attachments
                .iter()
                .any(|a| a.app == app && a.name == name)
            {
                return name;
            }
        }
        format!("HEROKU_POSTGRESQL_{}", self.attachments.len())
    }

    pub(super) fn create_addon(&mut self, app: &str, b: &Value, fails: bool) -> Answer {
        if !self.apps.contains_key(app) {
            return no_app(app);
        }
        let Some(plan) = maintenances::plan_in(b) else {
            return err(422, "invalid_params", "plan is required.");
        };
        if !self.plans.iter().any(|p| p == plan) {
            return err(
                422,
                "invalid_params",
                format!(
                    "Couldn't find either the add-on service or the add-on plan of \"{plan}\"."
                ),
            );
        }
        let name = match b.get("name").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            None => format!("postgresql-sandbox-{}", self.counter + 1),
        };
        if self.addons.iter().any(|a| a.name == name && !a.deleted) {
            return err(
                422,
                "invalid_params",
                format!("Name {name} is already taken."),
            );
        }
        let att_name = b
            .pointer("/attachment/name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| self.pick_color_name(app));
        if self
            .attachments
            .iter()
            .any(|a| a.app == app && a.name == att_name && a.namespace.is_none())
        {
            return err(
                422,
                "invalid_params",
                format!("Attachment name {att_name} is already taken."),
            );
        }
        // FACT: a follower is `config.follow`, a string the provider
        // resolves in the app's context (METHODS §1; the schema's config
        // values are strings).
        let follow = match b.pointer("/config/follow") {
            None => None,
            Some(Value::String(x)) => match self.check_follow(app, x, plan) {
                Ok(leader) => {
                    let name = self.addon_by_id(&leader).map(|l| l.name.clone());
                    Some((leader, name.unwrap_or_default()))
                }
                Err(answer) => return answer,
            },
            Some(_) => return err(422, "invalid_params", "config values must be strings."),
        };
        let now = self.now_ms();
        let id = self.uuid();
        let url = match self.new_url(0) {
            Ok(u) => u,
            Err(e) => return err(500, "internal_server_error", e),
        };
        let addon = Addon {
            id: id.clone(),
            name,
            app: app.to_string(),
            plan: plan.to_string(),
            created_ms: now,
            ready_ms: now + self.timing.provision_ms,
            // The two APIs need not agree: either may say ready first.
            available_ms: now
                + self
                    .timing
                    .wait_status_ready_ms
                    .unwrap_or(self.timing.provision_ms),
            unknown_until_ms: now + self.timing.wait_status_404_ms,
            fails,
            deleted: false,
            url,
            rows: 0.0,
            follower_of: follow.as_ref().map(|(_, name)| name.clone()),
            extra_credentials: vec![],
            repl: Replication {
                follow: follow.map(|(leader, _)| followers::Follow {
                    leader,
                    since_ms: now,
                    unfollow: None,
                    copy: None,
                }),
                ..Replication::default()
            },
        };
        self.addons.push(addon.clone());
        let i = self.addons.len() - 1;
        self.note_rows(i, now);
        let att_id = self.uuid();
        let description = attach_description("Attach", &att_name, &addon.name);
        self.attachments.push(Attachment {
            id: att_id,
            name: att_name,
            app: app.to_string(),
            addon_id: id,
            namespace: None,
        });
        // FACT (Dev Center, Release Phase): provisioning an add-on creates
        // a release, which runs the release command.
        self.new_release(app, description);
        Answer::status(201, self.addon_json(&addon))
    }

    pub(super) fn delete_addon(&mut self, app: &str, key: &str) -> Answer {
        let Some(i) = self.addon_ref(key).filter(|i| self.addons[*i].app == app) else {
            return err(
                404,
                "not_found",
                format!("Couldn't find that add-on: {key}."),
            );
        };
        let json = self.addon_json(&self.addons[i]);
        let id = self.addons[i].id.clone();
        let addon_name = self.addons[i].name.clone();
        self.addons[i].deleted = true;
        let gone: Vec<(String, String)> = self
            .attachments
            .iter()
            .filter(|a| a.addon_id == id)
            .map(|a| (a.app.clone(), a.name.clone()))
            .collect();
        self.attachments.retain(|a| a.addon_id != id);
        // GUESS: one release per attachment the destroyed add-on had.
        for (owner, name) in gone {
            self.new_release(&owner, attach_description("Detach", &name, &addon_name));
        }
        let mut json = json;
        json["state"] = json!("deprovisioned");
        Answer::ok(json)
    }

    pub(super) fn create_attachment(&mut self, b: &Value) -> Answer {
        let (Some(addon_key), Some(app)) = (
            b.get("addon").and_then(Value::as_str),
            b.get("app").and_then(Value::as_str),
        ) else {
            return err(
                422,
                "invalid_params",
                "addon and app are required (as strings).",
            );
        };
        let app = match self.apps.values().find(|a| a.name == app || a.id == app) {
            Some(a) => a.name.clone(),
            None => return no_app(app),
        };
        let Some(i) = self.addon_ref(addon_key) else {
            return err(
                404,
                "not_found",
                format!("Couldn't find that add-on: {addon_key}."),
            );
        };
        let addon_id = self.addons[i].id.clone();
        let namespace = b
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let name = b
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| self.pick_color_name(&app));
        // FACT: Essential-tier databases cannot pool connections: heroku/cli
        // src/commands/pg/connection-pooling/attach.ts refuses them with
        // "You can't perform this operation on Essential-tier databases.".
        // GUESS: the API refuses a pooler attachment (namespace
        // `connection-pooling:*`) on one as well, with 422 invalid_params
        // and the CLI's words (the CLI checks before it asks).
        if namespace
            .as_deref()
            .is_some_and(|n| n.starts_with("connection-pooling:"))
            && is_essential_plan(&self.addons[i].plan)
        {
            return err(
                422,
                "invalid_params",
                "You can't perform this operation on Essential-tier databases.",
            );
        }
        let confirmed = b.get("confirm").and_then(Value::as_str) == Some(app.as_str());
        if let Some(pos) = self
            .attachments
            .iter()
            .position(|a| a.app == app && a.name == name && a.namespace == namespace)
        {
            if !confirmed {
                return err(
                    423,
                    "confirmation_required",
                    format!("This action will replace the {name} attachment. Confirm with the app name."),
                );
            }
            let old = self.attachments.remove(pos);
            let old_addon = self
                .addons
                .iter()
                .find(|a| a.id == old.addon_id)
                .map(|a| a.name.clone())
                .unwrap_or_default();
            // FACT (promote.ts): replacing an attachment is a "Detach X"
            // release and then an "Attach X" release.
            self.new_release(&app, attach_description("Detach", &name, &old_addon));
        }
        let id = self.uuid();
        let addon_name = self.addons[i].name.clone();
        let att = Attachment {
            id,
            name: name.clone(),
            app: app.clone(),
            addon_id,
            namespace,
        };
        self.attachments.push(att.clone());
        self.new_release(&app, attach_description("Attach", &name, &addon_name));
        Answer::status(201, self.attachment_json(&att))
    }

    pub(super) fn delete_attachment(&mut self, id: &str) -> Answer {
        match self.attachments.iter().position(|a| a.id == id) {
            Some(pos) => {
                let json = self.attachment_json(&self.attachments[pos]);
                let old = self.attachments.remove(pos);
                let addon = self
                    .addons
                    .iter()
                    .find(|a| a.id == old.addon_id)
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
                self.new_release(&old.app, attach_description("Detach", &old.name, &addon));
                Answer::ok(json)
            }
            None => err(404, "not_found", "Couldn't find that add-on attachment."),
        }
    }

    /// FACT: `GET /client/v11/databases/{id}/wait_status` answers
    /// `{"waiting?", "error?", "message"}`, and 404 while the Data API does
    /// not know a new add-on yet (heroku/cli src/commands/pg/wait.ts takes
    /// a 404 as "Waiting to provision..." and tolerates 20 of them, 5 s
    /// apart). GUESS: how long the 404s last (`timing.wait_status_404_ms`)
    /// and the messages' wording.
    pub(super) fn wait_status(&self, id: &str) -> Answer {
        let now = self.now_ms();
        let unknown = || err(404, "not_found", "Couldn't find that database.");
        match self.addons.iter().find(|a| a.id == id) {
            Some(a) if a.deleted || now < a.unknown_until_ms => unknown(),
            Some(a) => {
                let (waiting, error, message) = if a.fails && now >= a.ready_ms {
                    (false, true, "Provisioning failed")
                } else if let Some(why) = self.waiting(a, now) {
                    (true, false, why)
                } else {
                    (false, false, "Available")
                };
                Answer::ok(json!({"waiting?": waiting, "error?": error, "message": message}))
            }
            None => unknown(),
        }
    }
}
