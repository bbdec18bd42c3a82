//! The HTTP client for Heroku's Platform API and Data API: one typed method
//! per call pgmigrate makes, and the rules every call follows: the headers
//! (Accept, User-Agent, Bearer token), a timeout, no redirects, pagination
//! with `Range`/`Next-Range`, retries with capped exponential backoff for
//! requests that are safe to repeat (and only on 429 for POSTs that create
//! things), rate-limit pacing, and [`ApiError`], which says what was asked,
//! what Heroku answered (status, error id, Request-Id) and whether the
//! request can have had an effect.
//!
//! It never prints and never logs a header, a request body, a response body
//! or the token: each request emits one `debug` event (method, path, status,
//! Request-Id, elapsed time) and each retry one `warn` event.
use std::collections::BTreeMap;

use super::call::{Api, Call, Retry};
use super::error::ApiError;
use super::transport::{Client, NEWEST_RELEASES_RANGE};
use super::types::{
    Addon, App, Attachment, CreateAddon, CreateAttachment, CreateTransfer, Credential,
    DatabaseInfo, Dyno, Formation, FormationBatch, FormationUpdate, Maintenance, Plan, Release,
    Transfer, UpdateAddon, WaitStatus,
};

impl Client {
    // --- Platform API ----------------------------------------------------

    /// `GET /apps/{app}`.
    pub fn app(&self, app: &str) -> Result<App, ApiError> {
        self.json(Call::new("GET", Api::Platform, &["apps", app]))
    }

    /// `PATCH /apps/{app}` `{"maintenance": on}`.
    pub fn set_maintenance(&self, app: &str, on: bool) -> Result<App, ApiError> {
        let call = Call::new("PATCH", Api::Platform, &["apps", app])
            .body(&serde_json::json!({ "maintenance": on }))?;
        self.json(call)
    }

    /// `GET /apps/{app}/formation`, every page.
    pub fn formation(&self, app: &str) -> Result<Vec<Formation>, ApiError> {
        self.list(Call::new("GET", Api::Platform, &["apps", app, "formation"]))
    }

    /// `PATCH /apps/{app}/formation` `{"updates": [...]}`: one call for all
    /// process types.
    pub fn update_formation(
        &self,
        app: &str,
        updates: &[FormationUpdate],
    ) -> Result<Vec<Formation>, ApiError> {
        let call = Call::new("PATCH", Api::Platform, &["apps", app, "formation"])
            .body(&FormationBatch { updates })?;
        self.json(call)
    }

    /// `GET /apps/{app}/dynos`, every page.
    pub fn dynos(&self, app: &str) -> Result<Vec<Dyno>, ApiError> {
        self.list(Call::new("GET", Api::Platform, &["apps", app, "dynos"]))
    }

    /// `GET /apps/{app}/config-vars`. Variables whose value is `null` are
    /// left out.
    pub fn config_vars(&self, app: &str) -> Result<BTreeMap<String, String>, ApiError> {
        let vars: BTreeMap<String, Option<String>> = self.json(Call::new(
            "GET",
            Api::Platform,
            &["apps", app, "config-vars"],
        ))?;
        Ok(present(vars))
    }

    /// `PATCH /apps/{app}/config-vars`: merges; a `None` deletes the
    /// variable. Returns the variables after the change.
    pub fn update_config_vars(
        &self,
        app: &str,
        vars: &BTreeMap<String, Option<String>>,
    ) -> Result<BTreeMap<String, String>, ApiError> {
        let call = Call::new("PATCH", Api::Platform, &["apps", app, "config-vars"]).body(vars)?;
        let vars: BTreeMap<String, Option<String>> = self.json(call)?;
        Ok(present(vars))
    }

    /// `GET /apps/{app}/addons`, every page.
    pub fn addons(&self, app: &str) -> Result<Vec<Addon>, ApiError> {
        self.list(Call::new("GET", Api::Platform, &["apps", app, "addons"]))
    }

    /// `GET /addons/{id_or_name}`.
    pub fn addon(&self, id_or_name: &str) -> Result<Addon, ApiError> {
        self.json(Call::new("GET", Api::Platform, &["addons", id_or_name]))
    }

    /// `POST /apps/{app}/addons`. Retried only on 429; any other failure is
    /// returned at once (see [`ApiError::not_applied`]).
    pub fn create_addon(&self, app: &str, body: &CreateAddon) -> Result<Addon, ApiError> {
        let call = Call::new("POST", Api::Platform, &["apps", app, "addons"])
            .retry(Retry::RateLimitOnly)
            .body(body)?;
        self.json(call)
    }

    /// `DELETE /apps/{app}/addons/{id_or_name}`. Retried: if a lost answer
    /// hid a success, the retry answers 404.
    pub fn delete_addon(&self, app: &str, id_or_name: &str) -> Result<(), ApiError> {
        self.send(Call::new(
            "DELETE",
            Api::Platform,
            &["apps", app, "addons", id_or_name],
        ))
        .map(drop)
    }

    /// `GET /apps/{app}/addon-attachments`, every page.
    pub fn attachments(&self, app: &str) -> Result<Vec<Attachment>, ApiError> {
        self.list(Call::new(
            "GET",
            Api::Platform,
            &["apps", app, "addon-attachments"],
        ))
    }

    /// `POST /addon-attachments`. Retried only on 429.
    pub fn create_attachment(&self, body: &CreateAttachment) -> Result<Attachment, ApiError> {
        let call = Call::new("POST", Api::Platform, &["addon-attachments"])
            .retry(Retry::RateLimitOnly)
            .body(body)?;
        self.json(call)
    }

    /// `DELETE /addon-attachments/{id}`. Retried: if a lost answer hid a
    /// success, the retry answers 404.
    pub fn delete_attachment(&self, id: &str) -> Result<(), ApiError> {
        self.send(Call::new(
            "DELETE",
            Api::Platform,
            &["addon-attachments", id],
        ))
        .map(drop)
    }

    /// `GET /addon-services/{service}`.
    pub fn addon_service(&self, service: &str) -> Result<super::types::NamedRef, ApiError> {
        self.json(Call::new(
            "GET",
            Api::Platform,
            &["addon-services", service],
        ))
    }

    /// `GET /addon-services/{service}/plans/{plan}`.
    pub fn plan(&self, service: &str, plan: &str) -> Result<Plan, ApiError> {
        self.json(Call::new(
            "GET",
            Api::Platform,
            &["addon-services", service, "plans", plan],
        ))
    }

    /// `GET /apps/{app}/releases` with `Range: version ..; max=5,
    /// order=desc`: the newest releases, newest first; only that first
    /// page is read (as the CLI's `partial: true`).
    pub fn newest_releases(&self, app: &str) -> Result<Vec<Release>, ApiError> {
        let mut call = Call::new("GET", Api::Platform, &["apps", app, "releases"]);
        call.range = Some(NEWEST_RELEASES_RANGE.to_owned());
        self.json(call)
    }

    /// `GET /apps/{app}/releases/{id_or_version}`.
    pub fn release(&self, app: &str, id_or_version: &str) -> Result<Release, ApiError> {
        self.json(Call::new(
            "GET",
            Api::Platform,
            &["apps", app, "releases", id_or_version],
        ))
    }

    // --- Data API ---------------------------------------------------------

    /// `GET /client/v11/databases/{addon_id}/wait_status` (404 while the
    /// add-on is just created).
    pub fn wait_status(&self, addon_id: &str) -> Result<WaitStatus, ApiError> {
        self.json(Call::new(
            "GET",
            Api::Data,
            &["client", "v11", "databases", addon_id, "wait_status"],
        ))
    }

    /// Data API `GET /postgres/v0/databases/{addon_name}/credentials`
    /// (HTTP Basic with the token, as `heroku pg:copy` sends it). The answer
    /// holds passwords: only the credential names are read from it.
    pub fn credentials(&self, addon_name: &str) -> Result<Vec<Credential>, ApiError> {
        let mut call = Call::new(
            "GET",
            Api::Data,
            &["postgres", "v0", "databases", addon_name, "credentials"],
        );
        call.basic_auth = true;
        self.json(call)
    }

    /// `GET /client/v11/databases/{addon_id}`.
    pub fn database(&self, addon_id: &str) -> Result<DatabaseInfo, ApiError> {
        self.json(Call::new(
            "GET",
            Api::Data,
            &["client", "v11", "databases", addon_id],
        ))
    }

    /// `POST /client/v11/databases/{target_addon_id}/transfers`. Retried
    /// only on 429. The body carries database URLs; it is never logged.
    pub fn create_transfer(
        &self,
        target_addon_id: &str,
        body: &CreateTransfer,
    ) -> Result<Transfer, ApiError> {
        let call = Call::new(
            "POST",
            Api::Data,
            &["client", "v11", "databases", target_addon_id, "transfers"],
        )
        .retry(Retry::RateLimitOnly)
        .body(body)?;
        self.json(call)
    }

    /// `GET /client/v11/apps/{app}/transfers/{uuid}`, with `?verbose=true`
    /// (which adds the logs) if `verbose`.
    pub fn transfer(&self, app: &str, uuid: &str, verbose: bool) -> Result<Transfer, ApiError> {
        let call = Call::new(
            "GET",
            Api::Data,
            &["client", "v11", "apps", app, "transfers", uuid],
        );
        self.json(if verbose {
            call.query("verbose=true")
        } else {
            call
        })
    }

    /// `GET /client/v11/apps/{app}/transfers`. Follows `Next-Range` if the
    /// Data API ever pages, but sends no first `Range` (*unverified* that
    /// the Data API accepts one; the official CLI sends none).
    pub fn transfers(&self, app: &str) -> Result<Vec<Transfer>, ApiError> {
        self.list(Call::new(
            "GET",
            Api::Data,
            &["client", "v11", "apps", app, "transfers"],
        ))
    }

    /// `POST /client/v11/apps/{app}/transfers/{uuid}/actions/cancel`.
    /// Cancelling twice is harmless, so this one is retried like a GET.
    pub fn cancel_transfer(&self, app: &str, uuid: &str) -> Result<(), ApiError> {
        self.send(Call::new(
            "POST",
            Api::Data,
            &[
                "client",
                "v11",
                "apps",
                app,
                "transfers",
                uuid,
                "actions",
                "cancel",
            ],
        ))
        .map(drop)
    }

    // --- Followers and plan changes --------------------------------------

    /// Data API `PUT /client/v11/databases/{addon_id}/unfollow`, no body, as
    /// `heroku pg:unfollow` sends it (src/commands/pg/unfollow.ts; the
    /// answer is ignored there too). Retried only on 429: the caller reads
    /// the database back when the answer is lost.
    pub fn unfollow(&self, addon_id: &str) -> Result<(), ApiError> {
        self.send(
            Call::new(
                "PUT",
                Api::Data,
                &["client", "v11", "databases", addon_id, "unfollow"],
            )
            .retry(Retry::RateLimitOnly),
        )
        .map(drop)
    }

    /// `PATCH /apps/{app}/addons/{addon}` with `{"plan": plan}` (the
    /// schema's add-on Update link), as `heroku addons:upgrade` changes a
    /// plan (src/commands/addons/upgrade.ts).
    /// Retried only on 429 (the caller reads the add-on back).
    pub fn change_plan(&self, app: &str, addon: &str, plan: &str) -> Result<Addon, ApiError> {
        let body = UpdateAddon {
            plan: plan.to_string(),
        };
        let call = Call::new("PATCH", Api::Platform, &["apps", app, "addons", addon])
            .retry(Retry::RateLimitOnly)
            .body(&body)?;
        self.json(call)
    }

    /// Data API `GET /data/maintenances/v1/{addon_id}` (heroku/cli
    /// src/commands/data/maintenances/info.ts).
    pub fn maintenance(&self, addon_id: &str) -> Result<Maintenance, ApiError> {
        self.json(Call::new(
            "GET",
            Api::Data,
            &["data", "maintenances", "v1", addon_id],
        ))
    }

    /// Data API `POST /data/maintenances/v1/{addon_id}/run`, no body
    /// (src/commands/data/maintenances/run.ts). Retried only on 429: the
    /// caller reads the maintenance back when the answer is lost.
    pub fn run_maintenance(&self, addon_id: &str) -> Result<(), ApiError> {
        self.send(
            Call::new(
                "POST",
                Api::Data,
                &["data", "maintenances", "v1", addon_id, "run"],
            )
            .retry(Retry::RateLimitOnly),
        )
        .map(drop)
    }
}

/// Drops the variables whose value is `null`.
fn present(vars: BTreeMap<String, Option<String>>) -> BTreeMap<String, String> {
    vars.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
