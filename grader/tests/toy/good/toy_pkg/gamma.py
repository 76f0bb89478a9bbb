def neg(a):
    return -a
