//! See DESIGN.md: module `dpif_netdev` (under construction in this commit's branch).
