//! The device a `train` run opens its executors on: `--device` as given, except that
//! `auto` is decided once per run, by timing the first model trained on the CPU backend
//! and the best adapter (`riskgrad::train::device_race`); a cross-validation's folds all
//! take the winner.

use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::shaders::Precision;
use riskgrad::engine::gpu::tune::TuneMode;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::engine::software_adapter_note;
use riskgrad::nn::ModelSpec;
use riskgrad::train::device_race::{auto_races, choose_for_training, Source, TrainingDevice};
use riskgrad::train::network::TrainingDevices;
use riskgrad::train::{Split, TrainConfig};
use riskgrad::Result;

/// See the module docs.
pub(super) struct RunDevice {
    asked: DeviceChoice,
    /// How a GPU's matmuls choose their variants (`--tune`).
    tune: TuneMode,
    /// How a GPU stores tensors (`--precision`): f16 opens every executor on the named
    /// GPU (no race).
    precision: Precision,
    /// `auto`'s winner and why, once the race (or the cache) has decided.
    decided: Option<(TrainingDevice, String)>,
    /// Opened before training, to name the device early; the next `open` hands it out.
    opened: Option<Box<dyn Executor>>,
    /// The executor the last `open` handed out.
    current: Option<Box<dyn Executor>>,
}

impl RunDevice {
    /// Refuses f16 on a device that is not a named GPU (or has no SHADER_F16) before any
    /// training.
    pub fn new(asked: &DeviceChoice, tune: TuneMode, precision: Precision) -> Result<Self> {
        let device = RunDevice {
            asked: asked.clone(),
            tune,
            precision,
            decided: None,
            opened: None,
            current: None,
        };
        if precision == Precision::F16 {
            let exec = device.fresh()?;
            return Ok(RunDevice {
                opened: Some(exec),
                ..device
            });
        }
        Ok(device)
    }

    /// A fresh executor on the asked device (not `auto`'s race).
    fn fresh(&self) -> Result<Box<dyn Executor>> {
        super::executor_for(&self.asked, self.tune, self.precision)
    }

    /// The device's name before any model is known, opening it early; `None` for an
    /// `auto` that the first model's race decides.
    pub fn name_before_training(&mut self) -> Result<Option<String>> {
        if let Some(exec) = &self.opened {
            return Ok(Some(exec.device_name()));
        }
        if self.asked == DeviceChoice::Auto && auto_races()? {
            return Ok(None);
        }
        let exec = self.fresh()?;
        let name = exec.device_name();
        self.opened = Some(exec);
        Ok(Some(name))
    }
}

impl TrainingDevices for RunDevice {
    /// Opens a fresh executor (the previous one dropped first), deciding `auto` on
    /// this model's steps the first time.
    fn open(
        &mut self,
        model: &ModelSpec,
        train: &Split,
        val: &Split,
        config: &TrainConfig,
    ) -> Result<()> {
        self.current = None;
        let exec = match (self.opened.take(), &self.decided) {
            (Some(exec), _) => exec,
            (None, Some((device, _))) => device.executor(),
            (None, None) if self.asked == DeviceChoice::Auto => {
                match choose_for_training(model, train, val, config)? {
                    Some(choice) => {
                        eprintln!("{}", choice.line());
                        if let Source::NotCached(why) = &choice.source {
                            eprintln!("note: the device choice is not cached ({why}): the next run times it again");
                        }
                        if let Some(name) = choice.device.software_adapter() {
                            eprintln!("{}", software_adapter_note(name));
                        }
                        if let TrainingDevice::Gpu(ctx) = &choice.device {
                            ctx.set_tuning(super::tuning(self.tune));
                        }
                        let exec = choice.device.executor();
                        self.decided = Some((choice.device.clone(), choice.reason()));
                        exec
                    }
                    None => self.fresh()?,
                }
            }
            (None, None) => self.fresh()?,
        };
        self.current = Some(exec);
        Ok(())
    }

    fn current(&mut self) -> Result<&mut dyn Executor> {
        match &mut self.current {
            Some(exec) => Ok(exec.as_mut()),
            None => Err(riskgrad::Error::internal(
                "RunDevice::current before any open",
            )),
        }
    }

    fn reason(&self) -> Option<String> {
        self.decided.as_ref().map(|(_, why)| why.clone())
    }
}
