//! See DESIGN.md: module `ofproto` (under construction in this commit's branch).
