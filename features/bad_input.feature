Feature: Bad input — hostile cookies, oversized sessions, failing stores
  Whatever arrives in a Cookie header is treated as "no cookie": never a panic, never a
  server error, never somebody else's session.

  Background:
    Given a bridge with session cookie "app.sid" and a max age of 1 day, on a manual clock

  @X1 @H2a
  Scenario: Malformed Cookie headers count as no cookie, even next to the owner's client cookie
    Each bad value comes with Alice's valid client cookie (" || " starts another header line:
    a line with a non-ASCII byte is dropped whole, so that row carries it in its own line):
    without it a parser that accepted the value would still read nothing, the session being
    another client's (H2 c).
    Given Alice has a session holding n = 1
    When requests arrive, one with each of these Cookie headers, and read the session:
      | case                          | header                                                                                   |
      | empty                         | app.sid.cid={Alice's client cookie}                                                      |
      | only separators               | app.sid.cid={Alice's client cookie}; ;;;===;                                             |
      | empty value                   | app.sid.cid={Alice's client cookie}; app.sid=                                            |
      | a lone dot                    | app.sid.cid={Alice's client cookie}; app.sid=.                                           |
      | bytes that are not UTF-8      | app.sid.cid={Alice's client cookie} || app.sid={bytes FF FE}                             |
      | huge                          | app.sid.cid={Alice's client cookie}; app.sid={100000 times A}                            |
      | trailing junk                 | app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie}x                   |
      | truncated signature           | app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie minus 2 characters} |
      | opening quote                 | app.sid.cid={Alice's client cookie}; app.sid="{Alice's session cookie}                   |
      | bare id without signature     | app.sid.cid={Alice's client cookie}; app.sid={Alice's session id}                        |
      | client value as session value | app.sid.cid={Alice's client cookie}; app.sid={Alice's client cookie}                     |
      | signature without id          | app.sid.cid={Alice's client cookie}; app.sid=.{Alice's session signature}                |
    Then every one of those requests succeeded with an empty session and no session cookie
    And each of those requests kept Alice's client id
    When a request arrives with these Cookie headers and reads the session:
      | app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie} |
    Then the session is {"n": 1}
    When Alice sends a request that increments n
    Then n is 2

  @X1 @H2b
  Scenario: After a restart no malformed Cookie header attaches the owner's session
    A new process has an empty mapping: a bad value that verified would be attached to Alice's
    client by H2 b.
    Given Alice has a session holding n = 1
    When the server restarts
    And the events so far are ignored
    And requests arrive, one with each of these Cookie headers, and read the session:
      | case                          | header                                                                                   |
      | empty                         | app.sid.cid={Alice's client cookie}                                                      |
      | only separators               | app.sid.cid={Alice's client cookie}; ;;;===;                                             |
      | empty value                   | app.sid.cid={Alice's client cookie}; app.sid=                                            |
      | a lone dot                    | app.sid.cid={Alice's client cookie}; app.sid=.                                           |
      | bytes that are not UTF-8      | app.sid.cid={Alice's client cookie} || app.sid={bytes FF FE}                             |
      | huge                          | app.sid.cid={Alice's client cookie}; app.sid={100000 times A}                            |
      | trailing junk                 | app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie}x                   |
      | truncated signature           | app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie minus 2 characters} |
      | opening quote                 | app.sid.cid={Alice's client cookie}; app.sid="{Alice's session cookie}                   |
      | bare id without signature     | app.sid.cid={Alice's client cookie}; app.sid={Alice's session id}                        |
      | client value as session value | app.sid.cid={Alice's client cookie}; app.sid={Alice's client cookie}                     |
      | signature without id          | app.sid.cid={Alice's client cookie}; app.sid=.{Alice's session signature}                |
    Then every one of those requests succeeded with an empty session and no session cookie
    And each of those requests kept Alice's client id
    And the bridge has 0 mapped sessions
    And the bridge emitted no event
    When a request arrives with these Cookie headers and reads the session:
      | app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie} |
    Then the session is {"n": 1}
    And the bridge has 1 mapped session

  @X3
  Scenario: An oversized change is refused with a clear error and nothing is half-written
    Given the bridge limits sessions to 1024 bytes of JSON
    And Alice has a session holding n = 1
    When Alice sends a request that stores a 2048-byte string under blob
    Then the request fails with SessionTooLarge
    And the error names the limit of 1024 bytes
    And the request wrote nothing to the store
    When Alice sends a request that increments n
    Then n is 2

  @X3 @H4
  Scenario: An oversized new session is not created at all
    Given the bridge limits sessions to 1024 bytes of JSON
    When Alice sends a request that stores a 2048-byte string under blob
    Then the request fails with SessionTooLarge
    And the request wrote nothing to the store
    And the bridge has 0 mapped sessions
    And the bridge emitted no event

  @ST4
  Scenario: A store failure surfaces as an error that names no id, and nothing is lost
    Given Alice has a session holding n = 1
    And the store starts failing
    When Alice sends a request that reads the session
    Then the request fails with Store
    And the error does not reveal Alice's session id
    Given the store works again
    When Alice sends a request that increments n
    Then n is 2
