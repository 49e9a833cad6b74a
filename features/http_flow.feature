Feature: HTTP flow — one session per browser, carried by two signed cookies
  Each request reads the client cookie and the session cookie, runs a handler on the
  session, and commits: the store is written only when something changed, and the
  session cookie is the authority over which session a request may use.

  Background:
    Given a bridge with session cookie "app.sid" and a max age of 1 day, on a manual clock

  @H1 @H3 @H8
  Scenario: A first visit gets a signed client cookie and nothing else; later visits keep its id
    When Alice sends a request that does not touch the session
    Then the request made no store call
    And the response sets exactly the cookies "app.sid.cid"
    And the response sets the client cookie with HttpOnly, Secure, SameSite=Lax, Path=/, Max-Age=31536000
    And Alice's client cookie is her client id, a dot and the base64url HMAC-SHA256 of "app.sid.cid=<id>" under key A
    When Alice sends a request that increments n
    And Alice sends a request that does not touch the session
    Then Alice kept her client id
    And the response sets the client cookie with Max-Age=31536000

  @H1
  Scenario: With client_always_roll off, a known browser gets no cookie at all
    Given the bridge option "client_always_roll" is off
    And Alice has visited without touching the session
    When Alice sends a request that does not touch the session
    Then the response sets no cookie
    And Alice kept her client id

  @H1
  Scenario: A client cookie with a bad signature is replaced by a new client id
    Given Alice has visited without touching the session
    And Alice's client cookie has a tampered signature
    When Alice sends a request that does not touch the session
    Then Alice got a new client id

  @H2a @H11
  Scenario: The browser that owns a session keeps using it, and each write renews its cookie
    Given Alice has a session holding n = 1
    When Alice sends a request that increments n
    Then n is 2
    And the response sets a session cookie with Max-Age=86400
    And Alice's client id is mapped to Alice's session id
    When Alice sends a request that reads the session
    Then the response sets no session cookie

  @H2b @H7 @B5
  Scenario: After a restart an existing session is re-attached to its browser, not destroyed
    Given Alice has a session holding n = 1
    And the events so far are ignored
    When the server restarts
    And Alice sends a request that increments n
    Then n is 2
    And Alice's client id is mapped to Alice's session id
    And the bridge emitted exactly:
      | event      | client | session | is_new | is_init |
      | SessionSet | Alice  | Alice   | false  | true    |
      | SessionSet | Alice  | Alice   | false  | false   |

  @H2c
  Scenario: A session cookie copied into another browser is ignored
    Given Alice has a session holding n = 2
    And Mallory has visited without touching the session
    And Mallory copies Alice's session cookie
    When Mallory sends a request that reads the session
    Then the session is {}
    And the response sets no session cookie
    When Mallory sends a request that increments n
    Then n is 1
    And Mallory's session id differs from Alice's session id
    When Alice sends a request that increments n
    Then n is 3
    And Alice's client id is mapped to Alice's session id

  @H2
  Scenario: The client cookie alone never yields a session or its cookie
    Given Alice has a session holding n = 1
    And Mallory copies Alice's client cookie
    When Mallory sends a request that reads the session
    Then the session is {}
    And the response sets no session cookie

  @H2 @H8
  Scenario: Creating a session with only a held client cookie gives a new client id, never moves the client
    Given Alice has a session holding n = 1
    And Mallory copies Alice's client cookie
    When Mallory sends a request that sets who to "planted"
    Then Mallory got a new client id
    And Alice's client id is mapped to Alice's session id
    When Alice sends a request that reads the session
    Then the session is {"n":1}

  @H2 @H8
  Scenario: A browser that destroys its own session and writes again keeps its client id
    Given Alice has a session holding n = 1
    When Alice sends a request that destroys the session
    And Alice sends a request that sets n to 2
    Then Alice kept her client id

  @H2d @C3
  Scenario: An unknown session id is never adopted, even when it is well formed
    Given the bridge option "signed" is off
    And Mallory's session cookie names the unknown id "tforgedforgedforgedforgedforged1"
    When Mallory sends a request that increments n
    Then n is 1
    And Mallory's session id differs from session "tforgedforgedforgedforgedforged1"
    And the store holds no record for session "tforgedforgedforgedforgedforged1"

  @H2d
  Scenario: A validly signed cookie of a destroyed session is not brought back
    Given Alice has a session holding n = 1
    And the app has destroyed the session of Alice's client id
    When Alice sends a request that increments n
    Then n is 1
    And Alice got a new session id
    And the store holds no record for Alice's previous session id

  @H3
  Scenario: A request that never touches the session costs no store round-trip
    Given Alice has a session holding n = 1
    When Alice sends a request that does not touch the session
    Then the request made no store call
    And the response sets exactly the cookies "app.sid.cid"

  @H4
  Scenario: A new session that ends the request empty stores nothing
    When Alice sends a request that sets tmp to 1 and then removes it
    Then the session is {}
    And the request wrote nothing to the store
    And the response sets no session cookie
    And the bridge has 0 mapped sessions
    And the bridge emitted no event

  @H4 @H6
  Scenario: The response that creates a session already knows its id
    When Alice sends a request that sets user to "ada" and reports the session id before and after
    Then the session id reported before the write is none
    And the session id reported after the write is the one in the response's session cookie
    And the response sets a session cookie with Max-Age=86400, HttpOnly, Secure, SameSite=Lax, Path=/
    And Alice's client id is mapped to Alice's session id
    And the bridge emitted exactly:
      | event      | client | session | is_new | is_init |
      | SessionSet | Alice  | Alice   | true   | true    |

  @H4 @GW2
  Scenario: A change is saved, an unchanged session is not rewritten
    Given Alice has a session holding n = 1
    And the events so far are ignored
    When Alice sends a request that increments n
    Then the request wrote to the store once
    And the bridge emitted exactly:
      | event      | client | session | is_new | is_init |
      | SessionSet | Alice  | Alice   | false  | false   |
    When Alice sends a request that reads the session
    Then the session is {"n":2}
    And the request wrote nothing to the store
    And the bridge emitted no event

  @H4 @H7
  Scenario: Destroying a session clears its cookie, says so, and the next request starts afresh
    Given Alice has a session holding n = 1
    And the events so far are ignored
    When Alice sends a request that destroys the session
    Then the response clears the session cookie
    And Alice's client id is not mapped
    And the bridge emitted exactly:
      | event          | client | session | is_new | is_init |
      | SessionDestroy | Alice  | Alice   |        |         |
    When Alice sends a request that increments n
    Then n is 1
    And Alice got a new session id

  @H5
  Scenario: Rolling re-sends the cookie and refreshes the TTL on every response
    Given the bridge option "rolling" is on
    And Alice has a session holding n = 1
    When the clock advances by 16 hours
    And Alice sends a request that reads the session
    Then the response sets a session cookie with Max-Age=86400
    And the request wrote to the store once
    When the clock advances by 16 hours
    And Alice sends a request that reads the session
    Then the session is {"n":1}
    And the response sets a session cookie with Max-Age=86400

  @H5
  Scenario: Renew refreshes only once less than half the TTL is left
    Given the bridge option "renew" is on
    And Alice has a session holding n = 1
    When the clock advances by 1 hour
    And Alice sends a request that reads the session
    Then the response sets no session cookie
    And the request wrote nothing to the store
    When the clock advances by 12 hours
    And Alice sends a request that reads the session
    Then the response sets a session cookie with Max-Age=86400
    And the request wrote to the store once

  @H5 @H8
  Scenario: Regenerate moves the data to a new session id and the browser to a new client id
    Given Alice has a session holding n = 1
    And Eve holds a copy of Alice's cookies
    And the events so far are ignored
    When Alice sends a request that regenerates the session
    Then Alice got a new session id
    And Alice got a new client id
    And Alice's client id is mapped to Alice's session id
    And Alice's previous client id is not mapped
    And the store holds no record for Alice's previous session id
    # The new record is written before the old one is destroyed, so a failure loses nothing.
    And the bridge emitted exactly:
      | event          | client           | session          | is_new | is_init |
      | SessionSet     | Alice            | Alice            | true   | true    |
      | SessionDestroy | Alice (previous) | Alice (previous) |        |         |
    When Alice sends a request that increments n
    Then n is 2
    When Eve sends a request that increments n
    Then n is 1

  @H5 @O2
  Scenario: A per-session max age (1 minute to 1 year) overrides the record TTL and the cookie
    When Alice sends a request that sets the session's max age to 59 seconds
    Then the request fails with InvalidOption
    And the error names the option max_age
    When Alice sends a request that sets the session's max age to 2 minutes and sets a to 1
    Then the response sets a session cookie with Max-Age=120
    When the clock advances by 119 seconds
    And Alice sends a request that reads the session
    Then the session is {"a":1}
    When the clock advances by 1 second
    And Alice sends a request that reads the session
    Then the session is {}

  @H5
  Scenario: A browser-session cookie has no Max-Age
    Given the bridge option "browser_session" is on
    When Alice sends a request that sets n to 1
    Then the response sets a session cookie without Max-Age

  @H7
  Scenario: Destroying a session whose record is already gone announces nothing
    Given Alice has a session holding n = 1
    And the app has destroyed the record of Alice's session id straight in the store
    And the events so far are ignored
    When the app destroys the session of Alice's session id
    Then the call returns false
    And Alice's client id is not mapped
    When the app destroys the session of Alice's client id
    Then the call returns false
    When Alice sends a request that destroys the session
    Then the response sets no session cookie
    And the bridge emitted no event
