"""dataperf-speech: training-set selection for keyword spotting, with a frozen evaluator."""
