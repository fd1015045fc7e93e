"""hotline: an Asterisk-integrated hotline / call-center backend."""

__version__ = "0.1.0"
