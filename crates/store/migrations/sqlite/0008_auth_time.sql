-- When the user last proved a factor in a login (Unix ms): set at sign-in
-- and by re-authentication, kept by refresh. NULL for logins started before
-- it was recorded, which count as stale.
ALTER TABLE sessions ADD COLUMN auth_time INTEGER;
