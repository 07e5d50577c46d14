"""Errors the command line reports as one line, never as a traceback."""


class BalancerError(Exception):
    """An error with a message fit to show the user as is."""

    exit_code = 1


class InputError(BalancerError):
    """Bad input: a snapshot, plan or config that failed validation (exit 2)."""

    exit_code = 2


class InfeasibleError(BalancerError):
    """The mandatory rules and capacities cannot all hold (exit 3)."""

    exit_code = 3


class SourceError(BalancerError):
    """The cluster source (vCenter, simulator) failed or could not be reached (exit 1)."""

    exit_code = 1
