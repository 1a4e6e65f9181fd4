# Unit tests of the allocator's modules, against its internal interfaces.
