"""The rendered deployment on a cluster of real hosts: cross-host intake and the head's loss."""
