"""What arrives from a student, read on the trusted side before anything of it runs.

``submission`` lays an upload (files, a zip, a notebook) over the template; ``notebook`` takes the
deliverables out of a Jupyter notebook; ``audit`` reads the submitted source against the
assignment's rules.
"""
