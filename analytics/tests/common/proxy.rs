//! A TCP proxy the test owns, standing between the sidecar and a shared
//! server, so an outage can be simulated without stopping the server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy that can be switched off (listener closed, connections cut)
/// and on again at the same address.
pub struct Proxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            upstream,
            accept: Mutex::new(None),
            connections: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let connections = self.connections.clone();
        let upstream = self.upstream;
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections.lock().unwrap().push(conn);
            }
        });
        *self.accept.lock().unwrap() = Some(accept);
    }

    /// Closes the listener, then cuts every connection. Returns once nothing
    /// can get through any more.
    pub async fn stop(&self) {
        let accept = self.accept.lock().unwrap().take();
        if let Some(accept) = accept {
            accept.abort();
            // Wait for the listener to be dropped: only then is no new
            // connection being registered.
            let _ = accept.await;
        }
        let connections: Vec<_> = self.connections.lock().unwrap().drain(..).collect();
        for c in connections {
            c.abort();
            let _ = c.await;
        }
    }

    pub async fn restart(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}
