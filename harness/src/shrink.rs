//! Shrinks a failing sequence to the smallest that still shows the same finding; deduplicates findings by signature.
