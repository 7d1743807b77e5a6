//! See DESIGN.md: module `config` (under construction in this commit's branch).
