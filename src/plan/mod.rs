//! The plan: everything a run will do, resolved once from the workload file and the command line before anything
//! runs. `workload` (TOML → [`workload::Plan`], every problem with its file, line, column and fix), `diagnostics`
//! (the TOML toolkit and diagnostics every configuration file shares), `thresholds` (the k6 threshold grammar),
//! `sim` (the simulator's parameters), `schedule` (the plan → every message's intended instant).

pub mod diagnostics;
pub mod schedule;
pub mod sim;
pub mod thresholds;
pub mod workload;
