"""Cloud provider clients behind one Provider protocol. Never imports kopf."""
