//! Builds asked for over the API, coalesced so that asking cannot make the
//! control plane build without bound.
//!
//! A build reads every live link and writes a file, so each request must
//! not mean one build. A request notes the outbox sequence when it arrives
//! (every change committed before it), then waits its turn: one request
//! builds and pushes at a time. When its turn comes and the latest
//! generation already holds that sequence (a build that ran while it waited,
//! or the scheduled one), it gets that generation without building. So N
//! requests at once cost at most two builds, and requests with no change in
//! between cost none; builds happen at most as often as links change, one at
//! a time. The pushes of the last build are remembered and returned with it;
//! a generation the scheduler built is pushed once when first returned here.

use crate::snapshot::{Generation, PushResult, SnapshotService};
use std::sync::Arc;
use tokio::sync::Mutex;

/// What a request got.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub generation: Generation,
    /// `false`: an existing generation already held every change.
    pub built: bool,
    pub pushes: Vec<PushResult>,
}

#[derive(Debug)]
pub struct SnapshotBuilds {
    service: Arc<SnapshotService>,
    /// The turn, and the generation last returned with its pushes.
    last: Mutex<Option<(Generation, Vec<PushResult>)>>,
}

impl SnapshotBuilds {
    pub fn new(service: Arc<SnapshotService>) -> Self {
        SnapshotBuilds {
            service,
            last: Mutex::new(None),
        }
    }

    /// A generation holding every change committed before this call.
    pub async fn request(&self) -> anyhow::Result<BuildOutcome> {
        let wanted = self.service.current_seq().await?;
        let mut last = self.last.lock().await;
        if let Some(latest) = self.service.latest().await?
            && latest.seq >= wanted
        {
            let pushes = match &*last {
                Some((g, pushes)) if g.id == latest.id => pushes.clone(),
                _ => {
                    let pushes = self.service.push_all(&latest).await;
                    *last = Some((latest.clone(), pushes.clone()));
                    pushes
                }
            };
            return Ok(BuildOutcome {
                generation: latest,
                built: false,
                pushes,
            });
        }
        let generation = self.service.build().await?;
        let pushes = self.service.push_all(&generation).await;
        *last = Some((generation.clone(), pushes.clone()));
        Ok(BuildOutcome {
            generation,
            built: true,
            pushes,
        })
    }
}
