//! Built-in catalogs: data that needs no setup (see [`tpch`]).

pub mod tpch;

pub use tpch::{TpchCatalog, TpchScanExec, TpchTable, TpchTableProvider, register_tpch_catalog};
