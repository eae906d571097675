"""Push reminders: planning (`planning`), sending through FCM (`sender`), the worker loop."""
