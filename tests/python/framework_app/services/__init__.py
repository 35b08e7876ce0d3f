"""The framework's services (a stand-in for its real package)."""
