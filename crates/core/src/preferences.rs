//! Customer notice preferences: channels per topic, quiet hours, urgency. (In progress.)
