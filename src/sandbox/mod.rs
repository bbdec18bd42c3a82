//! A local simulated Heroku for tests, rehearsals and the demo.
