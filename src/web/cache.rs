//! The per-cohort triage cache: a cohort's view (summaries, triage) built once and kept while the
//! store's cohort stamp is unchanged (or for a few seconds under a stream of writes).

use super::*;

/// How stale a changing cohort's queue may get (see [`App::view`]).
pub(super) const REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// One cohort as the UI shows it, computed once per change of the cohort's runs.
pub(super) struct CohortView {
    pub(super) stamp: String,
    pub(super) built: std::time::Instant,
    pub(super) record: CohortRecord,
    pub(super) rubric: Rubric,
    pub(super) records: Vec<SubmissionRecord>,
    pub(super) triage: Triage,
    /// anon id → index into `records`.
    pub(super) by_anon: HashMap<String, usize>,
    pub(super) redactor: Redactor,
}

impl App {
    /// Computes every cohort's view now, so the first grader does not wait for it.
    pub async fn warm(self: &Arc<Self>) -> Result<(), StoreError> {
        for c in self.store.cohorts().await? {
            if let Err(e) = self.view(&c.name).await {
                tracing::warn!("cohort {:?}: {e:?}", c.name);
            }
        }
        Ok(())
    }
    /// Forgets cached views (the next page computes them again).
    pub async fn forget_views(&self) {
        self.views.lock().await.clear();
    }
    /// The cohort's view, recomputed when its stamp moved.
    pub(super) async fn view(&self, name: &str) -> Result<Arc<CohortView>, WebError> {
        let Some(id) = self.store.cohort_id(name).await? else {
            return Err(WebError::NotFound(format!("no cohort named {name:?}")));
        };
        let stamp = self.store.cohort_stamp(id).await?;
        let mut views = self.views.lock().await;
        // While a cohort is being graded its stamp moves with every stage; recomputing its
        // triage (seconds for a thousand submissions) at most every REFRESH keeps pages fast.
        if let Some(v) = views
            .get(&id)
            .filter(|v| v.stamp == stamp || v.built.elapsed() < REFRESH)
        {
            return Ok(v.clone());
        }
        let record = self
            .store
            .cohorts()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| WebError::NotFound(format!("no cohort named {name:?}")))?;
        let rubric = record.rubric().ok_or_else(|| {
            WebError::BadRequest(format!(
                "cohort {name:?} was graded before rubrics were stored with cohorts: grade it again to review it"
            ))
        })?;
        let summary = crate::results::summarize(self.store.as_ref(), name, id, &rubric, record.top()).await?;
        let records = self.store.submissions(id).await?;
        let by_anon = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.anon_id.clone(), i))
            .collect();
        let view = Arc::new(CohortView {
            stamp,
            built: std::time::Instant::now(),
            redactor: Redactor::new(&records),
            record,
            rubric,
            records,
            triage: summary.triage,
            by_anon,
        });
        views.insert(id, view.clone());
        Ok(view)
    }
    /// `ctx` as the page may show it: identities redacted in blind mode. The form token and the
    /// page's own links are put back as they were (a cohort named like a candidate must not
    /// break them).
    pub(super) fn shown(&self, view: &CohortView, ctx: Context) -> Context {
        if !self.options.blind {
            return ctx;
        }
        const KEEP: [&str; 4] = ["csrf", "action", "cohort_href", "base"];
        let kept: Vec<(&str, serde_json::Value)> = KEEP
            .iter()
            .filter_map(|k| ctx.get(k).map(|v| (*k, v.clone())))
            .collect();
        let mut v = ctx.into_json();
        view.redactor.json(&mut v);
        let mut ctx = Context::from_value(v).expect("an object stays an object");
        for (k, v) in kept {
            ctx.insert(k, &v);
        }
        ctx
    }
}
