//! Config -> running bridges: the reconcile plan (`diff`) and the runtime-change journal
//! (`state`). The `Switch` that applies them to datapaths and ofprotos builds on these.

pub mod diff;
pub mod state;
