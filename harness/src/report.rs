//! Findings on disk (findings.json, reproducer directories with scenario + curl + Markdown), terminal progress and the summary table.
