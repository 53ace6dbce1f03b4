"""The video domain: frames in [0, 1] of a fixed size (Moving MNIST, your own clips); one
module per part (`nextframe.domains.get_part`)."""
