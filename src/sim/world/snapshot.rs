//! The admin JSON view of the whole world (`/__sandbox/state`).

use super::*;

impl World {
    /// The admin view of everything.
    pub fn snapshot(&mut self) -> Value {
        self.advance();
        let now = self.now_ms();
        let apps: BTreeMap<String, Value> = self
            .apps
            .values()
            .map(|a| {
                let atts: Vec<Value> = self
                    .attachments
                    .iter()
                    .filter(|t| t.app == a.name)
                    .map(|t| {
                        let addon = self.addons.iter().find(|x| x.id == t.addon_id);
                        json!({"id": t.id, "name": t.name, "namespace": t.namespace,
                               "addon_id": t.addon_id, "addon_name": addon.map(|x| x.name.clone())})
                    })
                    .collect();
                let database = self
                    .database_of(&a.name)
                    .and_then(|id| self.addons.iter().find(|x| x.id == id))
                    .map(|x| x.name.clone());
                (
                    a.name.clone(),
                    json!({
                        "id": a.id, "maintenance": a.maintenance,
                        "formation": a.formation.iter().map(|p| json!({"type": p.process_type, "quantity": p.quantity, "size": p.size})).collect::<Vec<_>>(),
                        "dynos": a.dynos.iter().map(|d| json!({"name": d.name, "type": d.process_type, "stopping": d.stop_ms.is_some() && d.process_type != "release",
                               "database": d.db_addon.as_ref().and_then(|id| self.addons.iter().find(|x| &x.id == id)).map(|x| x.name.clone()),
                               "booted_on": d.started_db.as_ref().and_then(|id| self.addons.iter().find(|x| &x.id == id)).map(|x| x.name.clone())})).collect::<Vec<_>>(),
                        "releases": self.releases_snapshot(&a.name),
                        "one_off_dynos": a.one_offs,
                        "config_vars": self.config_of(&a.name),
                        "attachments": atts,
                        "database": database,
                        "refused_writes": self.refused_of(&a.name),
                    }),
                )
            })
            .collect();
        let addons: Vec<Value> = self
            .addons
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut v = json!({"id": a.id, "name": a.name, "app": a.app, "plan": a.plan,
                       "state": a.state(now), "deleted": a.deleted, "url": a.url,
                       "rows": a.rows.floor() as u64});
                if let (Some(o), Value::Object(r)) = (v.as_object_mut(), self.repl_snapshot(i, now))
                {
                    o.extend(r);
                }
                v
            })
            .collect();
        let transfers: Vec<Value> = self
            .transfers
            .iter()
            .map(|t| {
                json!({"uuid": t.uuid, "from_addon": t.from_addon, "to_addon": t.to_addon,
                       "to_name": t.to_name, "finished": t.finished,
                       "succeeded": t.finished && !t.fails, "canceled": t.canceled_ms.is_some(),
                       "source_rows_at_start": t.source_rows.floor() as u64,
                       "created_ms": t.created_ms,
                       "started_ms": self.transfer_started_ms(t, now),
                       "finished_ms": self.transfer_finished_ms(t),
                       "real_copy_ended": t.pg_copy.as_ref().map(|c| c.end().is_some()),
                       "real_copy_canceled": t.pg_copy.as_ref().map(|c| c.end() == Some(crate::sim::pg::CopyEnd::Canceled))})
            })
            .collect();
        json!({"now_ms": now, "apps": apps, "addons": addons, "transfers": transfers,
               "maintenances": self.maintenances_snapshot(now),
               "requests": self.log.len()})
    }
}
