"""Runtime: worker processes (spawn or torchrun), the instrumented communicator, telemetry. Knows no models."""
