//! ModelState: what exists where (blobs, manifests, tags per repo; open upload sessions), updated op by op as a spec-exact registry would.
