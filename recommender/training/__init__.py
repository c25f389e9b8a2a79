"""Training, data loading, simulation and evaluation for WhisperLite (not needed at inference)."""
