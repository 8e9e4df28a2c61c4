//! The start-up the training commands share (`train`, `find-lr`): check the config, create the
//! output folder, load the data, check the batch size against it, open the backend, compute the
//! mean image and the loop settings, and say what was found.

use std::sync::Arc;

use crate::backend::{self, Selected};
use crate::config::Config;
use crate::console::Console;
use crate::data::{self, ImageSet, mean::mean_image};
use crate::error::{Error, Result};
use crate::fit::{FitData, FitSettings};
use crate::outputs::OutputDir;
use crate::saved_model::ModelInfo;

/// Everything a training command starts from.
pub struct Session {
    pub out: OutputDir,
    pub train: Arc<ImageSet>,
    pub test: ImageSet,
    /// Mean image of the training set (HWC).
    pub mean: Arc<Vec<f32>>,
    pub backend: Selected,
    pub settings: FitSettings,
    /// Where the run's story goes.
    pub console: Console,
}

impl Session {
    /// Prepare a run of `config`; every failure (config, data, backend) is reported here,
    /// before any training.
    pub fn prepare(config: &Config, console: Console) -> Result<Self> {
        config.validate()?;
        let out = OutputDir::create(&config.output.dir)?;
        let data = data::load(&config.data, console)?;
        check_batch_size(config.training.batch_size, data.train.len())?;
        let backend = backend::select(config.training.backend)?;
        console.say(&format!("backend: {}", backend.description));
        console.say(&format!("data: {}", data.description));
        let mean = Arc::new(mean_image(&data.train));
        let settings = FitSettings::new(config, &data.train);
        Ok(Self {
            out,
            train: Arc::new(data.train),
            test: data.test,
            mean,
            backend,
            settings,
            console,
        })
    }

    /// Images in the training set.
    pub fn train_size(&self) -> usize {
        self.train.len()
    }

    /// What travels with the weights: classes, input size, mean image.
    pub fn model_info(&self) -> ModelInfo {
        ModelInfo::of_training_set(&self.train, &self.mean)
    }

    /// The data the training loop needs.
    pub fn fit_data(&self) -> FitData<'_> {
        FitData {
            train: self.train.clone(),
            test: &self.test,
            mean: self.mean.clone(),
        }
    }
}

/// A batch larger than the training set would give no iteration at all.
pub fn check_batch_size(batch_size: usize, train_size: usize) -> Result<()> {
    if batch_size > train_size {
        return Err(Error::Config(format!(
            "training.batch_size = {batch_size} is larger than the {train_size} training images"
        )));
    }
    Ok(())
}
