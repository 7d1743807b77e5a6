//! See DESIGN.md: module `dpif_netlink` (under construction in this commit's branch).
