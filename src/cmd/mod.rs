pub mod bench;
pub mod data_args;
pub mod devices;
pub mod eval;
pub mod explain;
pub mod inspect;
pub mod predict;
pub mod train;

use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::{choose_adapter, DeviceChoice, GpuExecutor};
use riskgrad::Result;

/// The executor for `--device`: a GPU adapter when one qualifies, else the native CPU
/// backend (saying so when the user did not ask for it).
pub fn executor(choice: &DeviceChoice) -> Result<Box<dyn Executor>> {
    if *choice == DeviceChoice::Cpu {
        return Ok(Box::new(CpuExecutor::new()));
    }
    match choose_adapter(choice)? {
        Some(ctx) => Ok(Box::new(GpuExecutor::new(std::sync::Arc::new(ctx)))),
        None => {
            eprintln!("no hardware GPU adapter found: using the native CPU backend (name a software adapter with --device to use it)");
            Ok(Box::new(CpuExecutor::new()))
        }
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, so an existing file
/// is never left half-written.
pub fn write_atomically(path: &std::path::Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(|e| riskgrad::Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| riskgrad::Error::io(path, e))
}

/// A file written through a temporary name: `commit` renames it into place; dropped
/// without `commit` (an error on the way), the temporary file is removed and whatever
/// was at `path` before stays as it was.
pub struct AtomicWriter {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl AtomicWriter {
    pub fn create(path: &std::path::Path) -> Result<Self> {
        let mut name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".tmp");
        let tmp = path.with_file_name(name);
        // Named by the file the user asked for: the temporary name is ours.
        let file = std::fs::File::create(&tmp).map_err(|e| riskgrad::Error::io(path, e))?;
        Ok(AtomicWriter {
            path: path.to_path_buf(),
            tmp,
            out: Some(std::io::BufWriter::new(file)),
        })
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        let out = self.out.as_mut().expect("open until commit");
        out.write_all(bytes)
            .map_err(|e| riskgrad::Error::io(&self.tmp, e))
    }

    pub fn commit(mut self) -> Result<()> {
        let out = self.out.take().expect("open until commit");
        let file = out
            .into_inner()
            .map_err(|e| riskgrad::Error::io(&self.tmp, e.into_error()))?;
        file.sync_all()
            .map_err(|e| riskgrad::Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| riskgrad::Error::io(&self.path, e))
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Loads a saved model for a command, naming the `--model` flag when the directory is
/// not there.
pub fn load_model(dir: &std::path::Path) -> Result<riskgrad::model_io::SavedModel> {
    if !dir.exists() {
        return Err(riskgrad::Error::flag(
            "--model",
            format!("{} does not exist", dir.display()),
        ));
    }
    riskgrad::model_io::SavedModel::load(dir)
}
