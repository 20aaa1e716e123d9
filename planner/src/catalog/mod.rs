//! Built-in catalogs: data that needs no setup (see [`tpch`] and
//! [`netflix`]).

mod generated;
pub mod netflix;
pub mod tpch;

pub use netflix::{
    NetflixCatalog, NetflixParams, NetflixScanExec, NetflixTable, NetflixTableProvider,
    register_netflix_catalog, write_netflix_parquet,
};
pub use tpch::{TpchCatalog, TpchScanExec, TpchTable, TpchTableProvider, register_tpch_catalog};
