//! See DESIGN.md: module `pmd` (under construction in this commit's branch).
