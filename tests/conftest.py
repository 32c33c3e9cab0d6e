# efl applies its detectron2 compatibility fixes on import; it must come before detectron2.
import efl  # noqa: F401
