"""Instance lifecycle: the use cases both front ends call, the manager, the reconciler and runtimes."""
