//! Step 1 of a cell: register the cell and its task runs in the store and find the items
//! not yet stored, as units for the worker and pending items for the scorer.

use std::collections::HashMap;

use anyhow::Result;

use crate::eval::infer::{WorkResult, WorkUnit};
use crate::store::{Store, TaskRunSpec};
use crate::tasks::{Item, TaskName, TaskPlan};

/// An item waiting to be stored, and where.
pub(super) struct Pending<'p> {
    pub item: &'p Item,
    pub task: TaskName,
    pub task_run_id: i64,
    /// The worker's answer, kept while its program runs in the sandbox.
    pub result: Option<WorkResult>,
}

/// A cell registered in the store: what is left to do and where each item goes.
pub(super) struct Registered<'p> {
    pub cell_id: i64,
    /// Pending items by unit key (`task_run_id \t item_id`).
    pub pending: HashMap<String, Pending<'p>>,
    /// The work for the worker, in plan order.
    pub units: Vec<WorkUnit>,
    /// Items already stored, not run again.
    pub skipped: usize,
    /// Each plan's key and task run id, in plan order.
    pub plan_runs: Vec<(String, i64)>,
}

/// Registers the cell (by its key) and one task run per plan (by protocol key), and
/// collects every item not yet stored.
pub(super) fn register<'p>(
    store: &Store,
    run_id: i64,
    cell: &crate::store::CellInfo,
    plans: &'p [TaskPlan],
) -> Result<Registered<'p>> {
    let cell_id = store.upsert_cell(run_id, cell)?;
    let mut r = Registered {
        cell_id,
        pending: HashMap::new(),
        units: Vec::new(),
        skipped: 0,
        plan_runs: Vec::new(),
    };
    for plan in plans {
        let key = plan.key();
        let tr = store.upsert_task_run(
            cell_id,
            &TaskRunSpec {
                task: plan.task.as_str(),
                task_key: &key,
                protocol: &plan.protocol,
                dataset_hash: &plan.dataset_hash,
                n_shot: plan.n_shot,
                n_items: plan.items.len(),
            },
        )?;
        r.plan_runs.push((key, tr.id));
        let done = store.done_items(tr.id)?;
        for item in &plan.items {
            if done.contains(&item.id) {
                r.skipped += 1;
                continue;
            }
            let key = format!("{}\t{}", tr.id, item.id);
            r.units.push(WorkUnit {
                key: key.clone(),
                group: format!("{}/{}", plan.task.as_str(), plan.format.as_str()),
                work: item.work.clone(),
                prefix: item.shared_prefix.clone(),
            });
            r.pending.insert(
                key,
                Pending {
                    item,
                    task: plan.task,
                    task_run_id: tr.id,
                    result: None,
                },
            );
        }
    }
    Ok(r)
}
