//! The training schedule chosen from the data where the caller names none: rows per
//! step, epochs, how long early stopping waits, and how many networks are averaged. A small table needs many epochs (5
//! epochs of batch 256 are 20 steps on 1,000 rows, far too few to learn; BENCHMARKS.md,
//! "Accuracy against baselines"), a large one few.

use crate::nn::architecture::NetworkKind;

/// Rows per training step on tables large enough. 128 rather than 256: with the default
/// members, the bundled data's five-fold AUC is 0.7852 against 0.7847 at 256, over three
/// fold seeds 0.7850 to 0.7855 against 0.7847 to 0.7851 (BENCHMARKS.md, "Five-fold
/// cross-validation against baselines").
pub const DEFAULT_BATCH: usize = 128;
/// Smallest default batch: a small table gets batches of about a sixteenth of its rows
/// (more steps per epoch, and the noise of small batches regularizes), down to this.
pub const MIN_DEFAULT_BATCH: usize = 32;
/// Epochs without a better stopping-rows AUC before training stops, by default.
pub const DEFAULT_PATIENCE: usize = 5;
/// Fewest optimizer steps the default early stopping waits for a better AUC: on a small
/// table a few epochs are a few steps, while the stopping rows' AUC still jumps about.
pub const PATIENCE_STEPS: usize = 50;

/// Networks an MLP's default averages (`members`): each stops early on its own carve of
/// the training rows, with its own initial weights and shuffles, and the saved model
/// scores their mean probability. Three took the bundled data's five-fold AUC from
/// 0.7829 to 0.7847 at batch 256 (five: 0.7847, eight: 0.7849), for about 1.5× the
/// wall time of one; the slower sequence models train one by default.
pub const DEFAULT_MLP_MEMBERS: usize = 3;
/// The most members a caller may ask for.
pub const MAX_MEMBERS: usize = 64;

/// Refuses a number of members outside `1..=MAX_MEMBERS` (`Setting::Members`): the
/// library's check, which the CLI also runs before it reads any data.
pub fn check_members(members: usize) -> crate::error::Result<()> {
    if (1..=MAX_MEMBERS).contains(&members) {
        return Ok(());
    }
    Err(crate::error::Error::invalid(
        crate::error::Setting::Members,
        format!("{members} must be between 1 and {MAX_MEMBERS}"),
    ))
}

/// The members a `kind` of network trains when the caller names none: an MLP
/// [`DEFAULT_MLP_MEMBERS`], a sequence model (many times slower a step, and unmeasured
/// for accuracy with members) one.
pub fn default_members(kind: NetworkKind) -> usize {
    match kind {
        NetworkKind::Mlp => DEFAULT_MLP_MEMBERS,
        NetworkKind::Cnn | NetworkKind::Lstm | NetworkKind::Gru => 1,
    }
}

/// The seed of member `m` of a run seeded `seed`: its carve of the stopping rows, its
/// initial weights and its shuffles. Member 0 has the run's own seed, so a run of one
/// member is the run riskgrad trained before members existed.
pub fn member_seed(seed: u64, member: usize) -> u64 {
    seed ^ (member as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// How many epochs the default picks: enough for `steps` optimizer steps, within
/// `[min, max]` epochs.
struct EpochBudget {
    steps: usize,
    min: usize,
    max: usize,
}

/// With early stopping the epochs are a ceiling: the run stops when the stopping rows'
/// AUC stops improving, and keeps the best epoch.
const BUDGET_EARLY_STOP: EpochBudget = EpochBudget {
    steps: 1000,
    min: 10,
    max: 100,
};
/// Without it every epoch counts: past about 30 passes over a small table the network
/// overfits it (German credit: 0.761 AUC at 30 epochs, 0.723 at 100; see BENCHMARKS.md).
const BUDGET_ALL_EPOCHS: EpochBudget = EpochBudget {
    steps: 300,
    min: 5,
    max: 30,
};

impl EpochBudget {
    /// The epochs for `rows` training rows in batches of `batch`.
    fn epochs(&self, rows: usize, batch: usize) -> usize {
        self.steps
            .div_ceil(steps_per_epoch(rows, batch))
            .clamp(self.min, self.max)
    }
}

/// Optimizer steps in one epoch of `rows` rows in batches of `batch` (at least one).
pub fn steps_per_epoch(rows: usize, batch: usize) -> usize {
    (rows / batch.max(1)).max(1)
}

/// Early stopping as the caller asked for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stopping {
    /// None: every epoch trains, and the last is kept.
    Off,
    /// This patience in epochs, as given.
    Patience(usize),
    /// [`DEFAULT_PATIENCE`] epochs, and at least [`PATIENCE_STEPS`] steps.
    Default,
}

/// The rows per step, epochs and patience of one training run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Rows per optimizer step.
    pub batch: usize,
    /// Epochs (a ceiling when `patience` is set).
    pub epochs: usize,
    /// Epochs without a better stopping-rows AUC before training stops; `None`: off.
    pub patience: Option<usize>,
}

/// The schedule for `rows` training rows: `batch` and `epochs` where given, else chosen
/// from the table's size.
pub fn schedule(
    rows: usize,
    batch: Option<usize>,
    epochs: Option<usize>,
    stopping: Stopping,
) -> Schedule {
    let batch = batch.unwrap_or_else(|| default_batch(rows));
    let budget = match stopping {
        Stopping::Off => BUDGET_ALL_EPOCHS,
        Stopping::Patience(_) | Stopping::Default => BUDGET_EARLY_STOP,
    };
    let patience = match stopping {
        Stopping::Off => None,
        Stopping::Patience(n) => Some(n),
        Stopping::Default => {
            Some(DEFAULT_PATIENCE.max(PATIENCE_STEPS.div_ceil(steps_per_epoch(rows, batch))))
        }
    };
    Schedule {
        batch,
        epochs: epochs.unwrap_or_else(|| budget.epochs(rows, batch)),
        patience,
    }
}

/// The default rows per step for `rows` training rows.
pub fn default_batch(rows: usize) -> usize {
    (rows / 16)
        .clamp(MIN_DEFAULT_BATCH, DEFAULT_BATCH)
        .min(rows.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tables_get_small_batches_and_more_epochs() {
        assert_eq!(default_batch(30_000), 128);
        assert_eq!(default_batch(1_000), 62);
        assert_eq!(default_batch(100), 32);
        assert_eq!(default_batch(10), 10);
        // 24,000 rows: 187 steps an epoch, 6 epochs for 1,000 steps, so the least (10);
        // patience 5.
        let large = schedule(24_000, None, None, Stopping::Default);
        assert_eq!(
            (large.batch, large.epochs, large.patience),
            (128, 10, Some(5))
        );
        // 640 rows of batch 40: 16 steps an epoch, so patience waits 4 epochs → 5 (the
        // default), and 1,000 steps are 63 epochs.
        let small = schedule(640, None, None, Stopping::Default);
        assert_eq!(
            (small.batch, small.epochs, small.patience),
            (40, 63, Some(5))
        );
        // 200 rows: batch 32, 6 steps an epoch: patience 9 epochs (50 steps).
        assert_eq!(
            schedule(200, None, None, Stopping::Default).patience,
            Some(9)
        );
    }

    #[test]
    fn member_zero_keeps_the_run_seed_and_the_others_differ() {
        for seed in [0, 1, 7, u64::MAX] {
            assert_eq!(member_seed(seed, 0), seed);
            let seeds: std::collections::HashSet<u64> =
                (0..MAX_MEMBERS).map(|m| member_seed(seed, m)).collect();
            assert_eq!(seeds.len(), MAX_MEMBERS);
        }
        // Members of one run are not those of the next seed's run.
        assert_ne!(member_seed(0, 1), 1);
    }

    #[test]
    fn what_the_caller_gives_wins() {
        let s = schedule(24_000, Some(100), Some(3), Stopping::Patience(2));
        assert_eq!((s.batch, s.epochs, s.patience), (100, 3, Some(2)));
        let off = schedule(1_000, None, None, Stopping::Off);
        // 62 rows a step, 16 steps an epoch: 300 steps are 19 epochs.
        assert_eq!((off.batch, off.epochs, off.patience), (62, 19, None));
    }
}
