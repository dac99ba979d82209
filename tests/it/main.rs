//! The integration tests, linked into one binary: each file is a module. One binary
//! instead of one per file keeps the link time and the disk a clean build needs small.

// Helpers shared by several test modules; each module uses some of them.
#[allow(dead_code)]
#[macro_use]
mod common;
#[allow(dead_code)]
mod lifecycle_common;
// The f64 interpreter every kernel and gradient is checked against (the test oracle).
mod reference;
#[allow(dead_code)]
mod rnn_common;

mod activations;
mod arrow_source;
mod bench_json;
mod cli;
mod cli_outputs;
mod cli_sizes;
mod conv_gradcheck;
mod cross_validation;
mod data_errors;
mod data_fuzz;
mod data_lines;
mod data_odd_cells;
mod data_ple;
mod data_prepare;
mod data_scale;
mod device_auto;
mod dropout;
mod eval_fairness;
mod eval_rows;
mod explain_reasons;
mod fit;
mod gpu_adapters;
mod gpu_conv;
mod gpu_f16;
mod gpu_flat_width;
mod gpu_gemm_tune;
mod gpu_kernels;
mod gpu_rnn;
mod gpu_row_program;
mod gpu_split_table;
mod gpu_train;
mod gradcheck;
mod kernel_params;
mod launch_times;
mod library_run;
mod lifecycle_cli;
mod lifecycle_explain;
mod lifecycle_gpu;
mod lifecycle_model_io;
mod logistic;
mod model_card;
mod model_copy;
mod model_dir_swap;
mod monitor;
mod monotone;
mod mutation_fuzz;
mod parquet;
mod periodic;
mod plan;
mod resume_messages;
mod rnn_gradcheck;
mod rnn_reference;
mod rnn_train_e2e;
mod sequence;
mod setting_names;
mod shaders_validate;
mod software_adapter;
#[cfg(unix)]
mod special_files;
mod streamed_tables;
mod threads;
mod train_cnn;
mod train_e2e;
