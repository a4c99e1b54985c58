"""Each instance's own host (`<subdomain>.<instance domain>`): its owner, signed in through
the dashboard, reaches their OpenClaw Control UI there through the platform's reverse proxy;
anyone else is sent to sign in, or told there is nothing there."""
