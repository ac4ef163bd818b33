//! Renders a ContentSpec into bytes: deterministic blobs and manifests, their digests and media types.
