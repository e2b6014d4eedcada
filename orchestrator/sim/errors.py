"""The one exception type of the simulated site."""


class SimError(RuntimeError):
    """The simulated site cannot be brought up, inspected or taken down.

    The message says what is wrong in words a user can act on (missing tool, not root,
    a host that did not boot and why); the CLI prints it and exits 2.
    """
