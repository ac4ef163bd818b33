//! Renders each Op into HTTP requests for one target (following its own Locations) and runs a sequence on all targets at once.
