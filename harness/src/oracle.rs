//! The spec's rules (per endpoint id) and the model's expectation; compares observations and classifies divergences as violation / variation / unsupported.
