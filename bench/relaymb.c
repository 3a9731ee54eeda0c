// bench/relaymb.c - a C replica of the relay worker loop, for paired A/B of per-packet CPU (issue 3).
// One process: an rtpload-like generator thread (1 ms ticks, 20 ms ptime, 172-byte packets) and a
// relay thread on level-triggered epoll that switches mode every few seconds; prints the relay
// thread CPU per relayed packet per mode. Modes: 0 recvfrom+sendto, 1 + connected send sockets,
// 2 ET+recvmmsg, 3 ET+recvfrom until EAGAIN, 4 LT+recvmmsg. Edit CALLS/MODES/NR; loopback only
// (127.0.0.1 ports 20000+ and 42000+). Build: cc -O2 -o relaymb bench/relaymb.c -lpthread
// Paired A/B of relay per-packet CPU: generator thread (rtpload-like ticks) + relay thread.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <stdint.h>
#define CALLS 590
static int MODES[]={0,1}; 
#define NM 2
#define NR 24
#define NE (2*CALLS)
static int gs[NE], rs[NE], rc[NE]; static struct sockaddr_in ga[NE], ra[NE];
static volatile int mode=-1, quit=0; static volatile long relayed=0;
static int mkbind(int port,int reuse){int s=socket(AF_INET,SOCK_DGRAM|SOCK_NONBLOCK,0);int one=1;if(reuse)setsockopt(s,SOL_SOCKET,SO_REUSEPORT,&one,4);int big=1<<20;setsockopt(s,SOL_SOCKET,SO_RCVBUF,&big,4);struct sockaddr_in a={.sin_family=AF_INET,.sin_port=htons(port)};a.sin_addr.s_addr=htonl(0x7f000001);if(bind(s,(void*)&a,sizeof a)){perror("bind");exit(1);}return s;}
static double tcpu(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
static int rep;
static void *relay(void*x){ struct epoll_event ev[1024]; char buf[2048]; int cur=-2;
 while(!quit){ if(mode!=cur){ // switch
   for(int i=0;i<NE;i++){ if(rc[i]>=0){epoll_ctl(rep,EPOLL_CTL_DEL,rc[i],0);close(rc[i]);rc[i]=-1;}
     { struct epoll_event e={.events=EPOLLIN|((mode==2||mode==3)?EPOLLET:0),.data.u64=i}; epoll_ctl(rep,EPOLL_CTL_MOD,rs[i],&e);}
     if(mode>=1){ rc[i]=mkbind(ntohs(ra[i].sin_port),1); int peer=i; connect(rc[i],(void*)&ga[peer],sizeof ga[peer]); struct epoll_event e={.events=EPOLLIN|((mode==2||mode==3)?EPOLLET:0),.data.u64=(1ull<<32)|i}; epoll_ctl(rep,EPOLL_CTL_ADD,rc[i],&e);} }
   cur=mode; }
  int n=epoll_wait(rep,ev,1024,5);
  for(int k=0;k<n;k++){ uint64_t key=ev[k].data.u64; int i=key&0xffffffff; int fd=(key>>32)?rc[i]:rs[i];
   int o=i^1;
   if(cur==3){ char b3[2048]; for(;;){ struct sockaddr_in f; socklen_t fl=sizeof f; ssize_t m=recvfrom(fd,b3,2048,MSG_DONTWAIT,(void*)&f,&fl); if(m<0)break; send(rc[o],b3,m,0); relayed++; } continue; }
   if(cur==2||cur==4){ struct mmsghdr mm[4]; struct iovec v[4]; static char bb[4][2048]; struct sockaddr_in fa[4];
     for(;;){ for(int b=0;b<4;b++){v[b].iov_base=bb[b];v[b].iov_len=2048;memset(&mm[b],0,sizeof mm[b]);mm[b].msg_hdr.msg_iov=&v[b];mm[b].msg_hdr.msg_iovlen=1;mm[b].msg_hdr.msg_name=&fa[b];mm[b].msg_hdr.msg_namelen=sizeof fa[b];}
      int g=recvmmsg(fd,mm,4,MSG_DONTWAIT,0); if(g<=0)break; for(int b=0;b<g;b++){ send(rc[o],bb[b],mm[b].msg_len,0); relayed++;} if(g<4)break; }
     continue; }
   struct sockaddr_in f; socklen_t fl=sizeof f; ssize_t m=recvfrom(fd,buf,2048,0,(void*)&f,&fl); if(m<0)continue;
   if(cur==1 && rc[o]>=0) send(rc[o],buf,m,0); else sendto(rs[o],buf,m,0,(void*)&ga[o],sizeof ga[o]);
   relayed++; } }
 return 0;}
static void *gen(void*x){ int ep=epoll_create1(0); for(int i=0;i<NE;i++){struct epoll_event e={.events=EPOLLIN,.data.u32=i};epoll_ctl(ep,EPOLL_CTL_ADD,gs[i],&e);} 
 int tfd=timerfd_create(CLOCK_MONOTONIC,TFD_NONBLOCK); struct itimerspec its={{0,1000000},{0,1000000}}; timerfd_settime(tfd,0,&its,0); struct epoll_event te={.events=EPOLLIN,.data.u32=0xffffffff}; epoll_ctl(ep,EPOLL_CTL_ADD,tfd,&te);
 char pkt[172]; memset(pkt,0xff,172); struct epoll_event ev[256]; char buf[2048]; uint64_t tick=0;
 while(!quit){ int n=epoll_wait(ep,ev,256,5); for(int k=0;k<n;k++){ uint32_t id=ev[k].data.u32; if(id==0xffffffff){uint64_t e; read(tfd,&e,8); for(uint64_t t=0;t<e;t++){ int slot=tick%20; for(int c=slot;c<CALLS;c+=20){ for(int j=2*c;j<2*c+2;j++) sendto(gs[j],pkt,172,0,(void*)&ra[j],sizeof ra[j]); } tick++; } continue;}
   while(recv(gs[id],buf,2048,MSG_DONTWAIT)>0); } }
 return 0;}
int main(){ rep=epoll_create1(0);
 for(int i=0;i<NE;i++){ gs[i]=mkbind(20000+i,0); rs[i]=mkbind(42000+i,1); rc[i]=-1;
  ga[i]=(struct sockaddr_in){.sin_family=AF_INET,.sin_port=htons(20000+i)}; ga[i].sin_addr.s_addr=htonl(0x7f000001);
  ra[i]=ga[i]; ra[i].sin_port=htons(42000+i); struct epoll_event e={.events=EPOLLIN,.data.u64=i}; epoll_ctl(rep,EPOLL_CTL_ADD,rs[i],&e);} 
 // generator sends from gs[j] to ra[j]; relay forwards out of rs[j^1] to ga[j^1]: gs[j^1] receives
 // relay thread CPU via /proc: use pthread_getcpuclockid
 pthread_t rt,gt; mode=0; pthread_create(&rt,0,relay,0); pthread_create(&gt,0,gen,0);
 clockid_t cid; pthread_getcpuclockid(rt,&cid); double sum[5]={0},pk[5]={0};
 for(int r=0;r<NR;r++){ int m=MODES[r%NM]; mode=m; sleep(1); struct timespec a,b; clock_gettime(cid,&a); long p0=relayed; sleep(2); clock_gettime(cid,&b); long p1=relayed;
  double us=(b.tv_sec-a.tv_sec)*1e6+(b.tv_nsec-a.tv_nsec)/1e3; printf("mode %d: %.3f us/pkt (%ld pkts)\n",m,us/(p1-p0),p1-p0); fflush(stdout); sum[m]+=us; pk[m]+=p1-p0; }
 for(int m=0;m<5;m++) if(pk[m]) printf("TOTAL mode %d: %.3f us/pkt, ratio to mode 0 %.3f\n",m,sum[m]/pk[m],(sum[m]/pk[m])/(sum[0]/pk[0]));
 quit=1; return 0;}
