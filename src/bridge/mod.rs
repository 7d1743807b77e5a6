//! See DESIGN.md: module `bridge` (under construction in this commit's branch).
