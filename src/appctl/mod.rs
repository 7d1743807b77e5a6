//! See DESIGN.md: module `appctl` (under construction in this commit's branch).
