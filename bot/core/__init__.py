"""The small core every other part stands on: configuration, errors, policy and the services object."""
